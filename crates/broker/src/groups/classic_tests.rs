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

    let SyncStep::Wait(mut sync_b) = g.sync(&b, 1, (None, None), vec![], t0) else {
        panic!("a follower waits for the leader")
    };
    assert!(
        matches!(g.sync(&b, 0, (None, None), vec![], t0), SyncStep::Now(Err(e)) if e.code == ErrorCode::IllegalGeneration)
    );
    let assignments = vec![(a.clone(), Bytes::from_static(b"A")), (b.clone(), Bytes::from_static(b"B"))];
    let SyncStep::Wait(mut sync_a) = g.sync(&a, 1, (Some("consumer"), Some("range")), assignments, t0) else {
        panic!("the leader's sync answers at once")
    };
    assert_eq!(sync_a.try_recv().unwrap().unwrap(), Bytes::from_static(b"A"));
    assert_eq!(sync_b.try_recv().unwrap().unwrap(), Bytes::from_static(b"B"));
    assert_eq!(g.state, ClassicState::Stable);
    assert!(g.heartbeat(&b, 1, t0).is_ok());
    assert_eq!(g.heartbeat(&b, 0, t0).unwrap_err().code, ErrorCode::IllegalGeneration);
    assert_eq!(g.heartbeat("stranger", 1, t0).unwrap_err().code, ErrorCode::UnknownMemberId);
    assert!(g.check_commit(&a, 1, false, t0).is_ok());
    assert_eq!(g.check_commit(&a, 2, false, t0).unwrap_err().code, ErrorCode::IllegalGeneration);
}

#[test]
fn a_new_member_rebalances_a_stable_group_and_members_that_do_not_rejoin_in_time_are_removed() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", 0);
    let (a, mut rx_a) = join_new(&mut g, "a", &["range"], t0);
    g.tick(t0 + Duration::from_secs(1));
    outcome(&mut rx_a);
    let _ = g.sync(&a, 1, (None, None), vec![(a.clone(), Bytes::from_static(b"all"))], t0 + Duration::from_secs(1));
    assert_eq!(g.state, ClassicState::Stable);

    let t1 = t0 + Duration::from_secs(2);
    let (b, mut rx_b) = join_new(&mut g, "b", &["range"], t1);
    assert_eq!(g.state, ClassicState::PreparingRebalance);
    assert_eq!(g.heartbeat(&a, 1, t1).unwrap_err().code, ErrorCode::RebalanceInProgress, "a is told to rejoin");
    assert!(g.check_commit(&a, 1, false, t1).is_ok(), "a member commits what it processed before it rejoins");
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
    assert_eq!(
        g.check_commit(&a, 1, false, t0).unwrap_err().code,
        ErrorCode::RebalanceInProgress,
        "no commit between the join and the sync"
    );
    assert!(g.check_commit(&a, 1, true, t0).is_ok(), "transactional commits check member and generation only");
    let _ = g.sync(&a, 1, (None, None), vec![], t0 + Duration::from_secs(1));
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
    let _ = g.sync(&a, 2, (None, None), vec![], t0 + Duration::from_secs(2));
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

#[test]
fn a_static_members_new_incarnation_takes_its_place_and_fences_the_old_one() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", 0);
    let mut req = join_req("", &["range"]);
    req.instance_id = Some("pod-1".into());
    let JoinStep::Wait(mut rx) = g.join(req.clone(), t0, LIMITS, || "a-old".into()) else {
        panic!("a static member joins without MEMBER_ID_REQUIRED")
    };
    let (b, mut rx_b) = join_new(&mut g, "b", &["range"], t0);
    g.tick(t0 + Duration::from_secs(1));
    assert_eq!(outcome(&mut rx).leader, "a-old");
    outcome(&mut rx_b);
    let assignments = vec![("a-old".to_string(), Bytes::from_static(b"P0")), (b.clone(), Bytes::from_static(b"P1"))];
    let _ = g.sync("a-old", 1, (None, None), assignments, t0);
    assert_eq!(g.state, ClassicState::Stable);

    // The pod restarts: a new incarnation joins with the same instance id and no member id.
    let JoinStep::Wait(mut again) = g.join(req, t0 + Duration::from_secs(2), LIMITS, || "a-new".into()) else {
        panic!()
    };
    assert!(!g.members.contains_key("a-old"));
    assert_eq!(g.members["a-new"].assignment, Bytes::from_static(b"P0"), "it keeps the old incarnation's assignment");
    assert_eq!(g.check_instance("a-old", Some("pod-1")).unwrap_err().code, ErrorCode::FencedInstanceId);
    assert!(g.check_instance("a-new", Some("pod-1")).is_ok());
    // It led, so the group rebalances; b rejoins and the new incarnation leads again.
    assert_eq!(g.state, ClassicState::PreparingRebalance);
    let JoinStep::Wait(mut rx_b) = g.join(join_req(&b, &["range"]), t0, LIMITS, || unreachable!()) else { panic!() };
    assert_eq!(outcome(&mut again).leader, "a-new");
    assert_eq!(outcome(&mut rx_b).generation, 2);
    let mut stale = join_req("a-old", &["range"]);
    stale.instance_id = Some("pod-1".into());
    assert!(matches!(
        g.join(stale, t0, LIMITS, || unreachable!()),
        JoinStep::Now(Err((e, _))) if e.code == ErrorCode::FencedInstanceId
    ));
}

#[test]
fn member_ids_handed_out_are_kept_for_a_session_and_a_rebalance_waits_for_them() {
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", 0);
    let (a, mut rx_a) = join_new(&mut g, "a", &["range"], t0);
    g.tick(t0 + Duration::from_secs(1));
    outcome(&mut rx_a);
    let _ = g.sync(&a, 1, (None, None), vec![], t0 + Duration::from_secs(1));
    // b is told its id, then a rejoins: the join phase waits for b too.
    let JoinStep::Now(Err((_, b))) = g.join(join_req("", &["range"]), t0, LIMITS, || "b-id".into()) else { panic!() };
    g.leave(&a, t0 + Duration::from_secs(2)).unwrap();
    assert!(!g.is_idle(), "the handed-out id keeps the group");
    g.tick(t0 + Duration::from_secs(5));
    assert!(!g.is_idle(), "for the member's session timeout (10 s)");
    let JoinStep::Wait(mut rx_b) =
        g.join(join_req(&b, &["range"]), t0 + Duration::from_secs(6), LIMITS, || unreachable!())
    else {
        panic!("the id is still good")
    };
    g.tick(t0 + Duration::from_secs(7));
    assert_eq!(outcome(&mut rx_b).members.len(), 1);
    let JoinStep::Now(Err((_, c))) = g.join(join_req("", &["range"]), t0, LIMITS, || "c-id".into()) else { panic!() };
    g.tick(t0 + Duration::from_secs(30));
    assert!(
        matches!(
            g.join(join_req(&c, &["range"]), t0 + Duration::from_secs(30), LIMITS, || unreachable!()),
            JoinStep::Now(Err((e, _))) if e.code == ErrorCode::UnknownMemberId
        ),
        "an id never used expires with its session"
    );
}
