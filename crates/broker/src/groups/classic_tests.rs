//! The classic group state machine, driven by hand with a fake clock.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot::error::TryRecvError;
use vltava_common::ErrorCode;

use super::*;

const LIMITS: ClassicLimits = ClassicLimits {
    initial_rebalance_delay: Duration::from_millis(300),
    min_session_timeout: Duration::from_millis(100),
    max_session_timeout: Duration::from_secs(60),
};

fn join_req(member: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member.to_string(),
        instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        protocol_type: "consumer".into(),
        protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(format!("meta-{member}-{p}")))).collect(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(5),
        require_known_member_id: true,
    }
}

type JoinRx = tokio::sync::oneshot::Receiver<Result<JoinOutcome, vltava_common::WireError>>;

/// A first join: `MEMBER_ID_REQUIRED` with an id, then the join with it, which waits.
fn join_new(g: &mut ClassicGroup, name: &str, protocols: &[&str], now: Instant) -> (String, JoinRx) {
    let JoinStep::Now(Err((e, id))) = g.join(join_req("", protocols), now, LIMITS, || format!("{name}-id")) else {
        panic!("a first join must be told its member id")
    };
    assert_eq!(e.code, ErrorCode::MemberIdRequired);
    match g.join(join_req(&id, protocols), now, LIMITS, || unreachable!()) {
        JoinStep::Wait(rx) => (id, rx),
        JoinStep::Now(r) => panic!("the join must wait, got {r:?}"),
    }
}

fn outcome(rx: &mut JoinRx) -> JoinOutcome {
    rx.try_recv().expect("answered").expect("joined")
}

#[test]
fn a_first_rebalance_waits_the_initial_delay_then_elects_a_leader_and_the_leaders_sync_hands_out_assignments() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", 7);
    let (a, mut rx_a) = join_new(&mut g, "a", &["range", "roundrobin"], t0);
    assert_eq!(g.state, ClassicState::PreparingRebalance);
    let (b, mut rx_b) = join_new(&mut g, "b", &["roundrobin", "range"], t0 + Duration::from_millis(100));
    g.tick(t0 + Duration::from_millis(200));
    assert!(matches!(rx_a.try_recv(), Err(TryRecvError::Empty)), "the initial delay is not over");
    g.tick(t0 + Duration::from_millis(450));
    let (oa, ob) = (outcome(&mut rx_a), outcome(&mut rx_b));
    assert_eq!(g.state, ClassicState::CompletingRebalance);
    assert_eq!((oa.generation, ob.generation), (1, 1));
    assert_eq!(oa.leader, a, "the first member leads");
    assert_eq!(oa.protocol, "range", "a tie goes to the first member's preference");
    assert_eq!(oa.members.len(), 2, "the leader gets every member's metadata");
    assert_eq!(oa.members[1].2, Bytes::from(format!("meta-{b}-range")));
    assert!(ob.members.is_empty(), "followers get no member list");

    let SyncStep::Wait(mut sync_b) = g.sync(&b, 1, vec![], t0) else { panic!("a follower waits for the leader") };
    assert!(matches!(g.sync(&b, 0, vec![], t0), SyncStep::Now(Err(e)) if e.code == ErrorCode::IllegalGeneration));
    let assignments = vec![(a.clone(), Bytes::from_static(b"A")), (b.clone(), Bytes::from_static(b"B"))];
    let SyncStep::Wait(mut sync_a) = g.sync(&a, 1, assignments, t0) else {
        panic!("the leader's sync answers at once")
    };
    assert_eq!(sync_a.try_recv().unwrap().unwrap(), Bytes::from_static(b"A"));
    assert_eq!(sync_b.try_recv().unwrap().unwrap(), Bytes::from_static(b"B"));
    assert_eq!(g.state, ClassicState::Stable);
    assert!(g.heartbeat(&b, 1, t0).is_ok());
    assert_eq!(g.heartbeat(&b, 0, t0).unwrap_err().code, ErrorCode::IllegalGeneration);
    assert_eq!(g.heartbeat("stranger", 1, t0).unwrap_err().code, ErrorCode::UnknownMemberId);
    assert!(g.check_commit(&a, 1).is_ok());
    assert_eq!(g.check_commit(&a, 2).unwrap_err().code, ErrorCode::IllegalGeneration);
}

#[test]
fn a_new_member_rebalances_a_stable_group_and_members_that_do_not_rejoin_in_time_are_removed() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", 0);
    let (a, mut rx_a) = join_new(&mut g, "a", &["range"], t0);
    g.tick(t0 + Duration::from_secs(1));
    outcome(&mut rx_a);
    let _ = g.sync(&a, 1, vec![(a.clone(), Bytes::from_static(b"all"))], t0 + Duration::from_secs(1));
    assert_eq!(g.state, ClassicState::Stable);

    let t1 = t0 + Duration::from_secs(2);
    let (b, mut rx_b) = join_new(&mut g, "b", &["range"], t1);
    assert_eq!(g.state, ClassicState::PreparingRebalance);
    assert_eq!(g.heartbeat(&a, 1, t1).unwrap_err().code, ErrorCode::RebalanceInProgress, "a is told to rejoin");
    assert_eq!(g.check_commit(&a, 1).unwrap_err().code, ErrorCode::RebalanceInProgress);
    // a never rejoins: after the rebalance timeout (5 s) the join completes without it.
    g.tick(t1 + Duration::from_secs(4));
    assert!(matches!(rx_b.try_recv(), Err(TryRecvError::Empty)));
    g.tick(t1 + Duration::from_secs(5));
    let ob = outcome(&mut rx_b);
    assert_eq!((ob.generation, ob.leader.as_str()), (2, b.as_str()), "b leads the new generation alone");
    assert!(!g.members.contains_key(&a));
}

#[test]
fn every_member_rejoining_completes_the_join_at_once_and_leaving_or_expiring_rebalances() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", 0);
    let (a, mut rx_a) = join_new(&mut g, "a", &["range"], t0);
    let (b, mut rx_b) = join_new(&mut g, "b", &["range"], t0);
    g.tick(t0 + Duration::from_secs(1));
    outcome(&mut rx_a);
    outcome(&mut rx_b);
    let _ = g.sync(&a, 1, vec![], t0 + Duration::from_secs(1));
    // A follower rejoining unchanged gets its generation back without a rebalance.
    let JoinStep::Wait(mut again) = g.join(join_req(&b, &["range"]), t0, LIMITS, || unreachable!()) else { panic!() };
    assert_eq!(outcome(&mut again).generation, 1);
    assert_eq!(g.state, ClassicState::Stable);

    g.leave(&b, t0 + Duration::from_secs(2)).unwrap();
    assert_eq!(g.state, ClassicState::PreparingRebalance);
    let JoinStep::Wait(mut rx_a) = g.join(join_req(&a, &["range"]), t0, LIMITS, || unreachable!()) else { panic!() };
    let oa = outcome(&mut rx_a);
    assert_eq!((oa.generation, oa.members.len()), (2, 1), "the only member rejoined: no waiting");

    // a's session lapses: the group is empty, and its generation moved on.
    let _ = g.sync(&a, 2, vec![], t0 + Duration::from_secs(2));
    g.tick(t0 + Duration::from_secs(13));
    assert_eq!(g.state, ClassicState::Empty);
    assert!(g.members.is_empty());
    assert_eq!(g.generation, 3);
}

#[test]
fn joins_with_bad_timeouts_unknown_ids_or_no_shared_assignor_are_refused() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", 0);
    let mut short = join_req("", &["range"]);
    short.session_timeout = Duration::from_millis(10);
    assert!(
        matches!(g.join(short, t0, LIMITS, || "x".into()), JoinStep::Now(Err((e, _))) if e.code == ErrorCode::InvalidSessionTimeout)
    );
    assert!(matches!(
        g.join(join_req("made-up", &["range"]), t0, LIMITS, || "x".into()),
        JoinStep::Now(Err((e, _))) if e.code == ErrorCode::UnknownMemberId
    ));
    let (_a, _rx) = join_new(&mut g, "a", &["range"], t0);
    assert!(matches!(
        g.join(join_req("", &["sticky"]), t0, LIMITS, || "x".into()),
        JoinStep::Now(Err((e, _))) if e.code == ErrorCode::InconsistentGroupProtocol
    ));
    let mut other_type = join_req("", &["range"]);
    other_type.protocol_type = "connect".into();
    assert!(
        matches!(g.join(other_type, t0, LIMITS, || "x".into()), JoinStep::Now(Err((e, _))) if e.code == ErrorCode::InconsistentGroupProtocol)
    );
}
