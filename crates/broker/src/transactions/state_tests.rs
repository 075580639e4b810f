//! Unit tests of the transaction state machine.

use super::*;

const MAX: i32 = 900_000;

fn parts(list: &[(&str, &[i32])]) -> TopicPartitions {
    list.iter().map(|(t, ps)| (t.to_string(), ps.iter().copied().collect())).collect()
}

fn ready(d: Option<InitDecision>) -> TxnMetadata {
    match d {
        Some(InitDecision::Ready(m)) => m,
        other => panic!("expected Ready, got {other:?}"),
    }
}

#[test]
fn a_new_id_gets_the_allocated_producer_id_and_each_init_bumps_the_epoch() {
    assert_eq!(init(None, 60_000, MAX, None, 1).unwrap(), None, "asks for a producer id first");
    let m = ready(init(None, 60_000, MAX, Some(42), 1).unwrap());
    assert_eq!((m.producer_id, m.producer_epoch, m.status), (42, 0, TxnStatus::Empty));
    let again = ready(init(Some(&m), 30_000, MAX, None, 2).unwrap());
    assert_eq!((again.producer_id, again.producer_epoch, again.timeout_ms), (42, 1, 30_000));
    let exhausted = TxnMetadata { producer_epoch: MAX_EPOCH, ..m.clone() };
    assert_eq!(init(Some(&exhausted), 60_000, MAX, None, 3).unwrap(), None);
    let renewed = ready(init(Some(&exhausted), 60_000, MAX, Some(43), 3).unwrap());
    assert_eq!((renewed.producer_id, renewed.producer_epoch), (43, 0));
}

#[test]
fn a_timeout_outside_the_limit_is_refused() {
    for bad in [0, -1, MAX + 1] {
        let e = init(None, bad, MAX, Some(1), 0).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTransactionTimeout);
    }
}

#[test]
fn a_new_producer_aborts_the_open_transaction_with_a_bumped_epoch() {
    let m = ready(init(None, 60_000, MAX, Some(7), 0).unwrap());
    let ongoing = add_partitions("t", Some(&m), 7, 0, &parts(&[("a", &[0])]), 5).unwrap().unwrap();
    match init(Some(&ongoing), 60_000, MAX, None, 6).unwrap() {
        Some(InitDecision::AbortFirst(p)) => {
            assert_eq!((p.status, p.producer_epoch), (TxnStatus::PrepareAbort, 1));
            assert_eq!(p.partitions, ongoing.partitions, "markers go to every partition");
            // The zombie (epoch 0) is fenced from now on.
            let e = end("t", Some(&p), 7, 0, true, 7).unwrap_err();
            assert_eq!(e.code, ErrorCode::ProducerFenced);
            assert!(matches!(init(Some(&p), 60_000, MAX, None, 7).unwrap(), Some(InitDecision::Busy(_))));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn partitions_accumulate_while_ongoing_and_a_new_transaction_starts_empty() {
    let m = ready(init(None, 60_000, MAX, Some(7), 0).unwrap());
    let a = add_partitions("t", Some(&m), 7, 0, &parts(&[("a", &[0, 1])]), 10).unwrap().unwrap();
    assert_eq!((a.status, a.start_ms), (TxnStatus::Ongoing, 10));
    assert_eq!(add_partitions("t", Some(&a), 7, 0, &parts(&[("a", &[1])]), 11).unwrap(), None);
    let b = add_partitions("t", Some(&a), 7, 0, &parts(&[("b", &[2])]), 12).unwrap().unwrap();
    assert_eq!(b.partitions, parts(&[("a", &[0, 1]), ("b", &[2])]));
    assert_eq!(b.start_ms, 10);
    let EndDecision::Prepare(p) = end("t", Some(&b), 7, 0, true, 13).unwrap() else { panic!() };
    let done = complete(&p, 14);
    assert_eq!((done.status, done.partitions.len()), (TxnStatus::CompleteCommit, 0));
    let next = add_partitions("t", Some(&done), 7, 0, &parts(&[("c", &[0])]), 20).unwrap().unwrap();
    assert_eq!((next.partitions.clone(), next.start_ms), (parts(&[("c", &[0])]), 20));
}

#[test]
fn calls_out_of_order_get_kafkas_errors() {
    let m = ready(init(None, 60_000, MAX, Some(7), 0).unwrap());
    assert_eq!(end("t", Some(&m), 7, 0, true, 1).unwrap_err().code, ErrorCode::InvalidTxnState);
    assert_eq!(end("t", None, 7, 0, true, 1).unwrap_err().code, ErrorCode::InvalidProducerIdMapping);
    assert_eq!(end("t", Some(&m), 8, 0, true, 1).unwrap_err().code, ErrorCode::InvalidProducerIdMapping);
    let a = add_partitions("t", Some(&m), 7, 0, &parts(&[("a", &[0])]), 1).unwrap().unwrap();
    let EndDecision::Prepare(p) = end("t", Some(&a), 7, 0, false, 2).unwrap() else { panic!() };
    assert_eq!(p.status, TxnStatus::PrepareAbort);
    // While the markers are written: adding is refused (retriable), a retried abort waits, a
    // commit is a contradiction.
    let e = add_partitions("t", Some(&p), 7, 0, &parts(&[("b", &[0])]), 3).unwrap_err();
    assert_eq!(e.code, ErrorCode::ConcurrentTransactions);
    assert!(matches!(end("t", Some(&p), 7, 0, false, 3).unwrap(), EndDecision::InProgress(_)));
    assert_eq!(end("t", Some(&p), 7, 0, true, 3).unwrap_err().code, ErrorCode::InvalidTxnState);
    let done = complete(&p, 4);
    assert_eq!(end("t", Some(&done), 7, 0, false, 5).unwrap(), EndDecision::Done);
    assert_eq!(end("t", Some(&done), 7, 0, true, 5).unwrap_err().code, ErrorCode::InvalidTxnState);
}

#[test]
fn only_ongoing_transactions_past_their_timeout_time_out() {
    let mut state = TxnShardState::default();
    let m = ready(init(None, 1_000, MAX, Some(7), 0).unwrap());
    let ongoing = add_partitions("t", Some(&m), 7, 0, &parts(&[("a", &[0])]), 100).unwrap().unwrap();
    state.txns.insert("t".into(), ongoing);
    state.txns.insert("idle".into(), m);
    assert!(timed_out(&state, 1_100).is_empty());
    let late = timed_out(&state, 1_101);
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].0, "t");
}

#[test]
fn idle_ids_expire_but_open_transactions_do_not() {
    let mut state = TxnShardState::default();
    let idle = ready(init(None, 1_000, MAX, Some(7), 100).unwrap());
    let open = add_partitions("o", Some(&idle), 7, 0, &parts(&[("a", &[0])]), 100).unwrap().unwrap();
    state.txns.insert("idle".into(), idle);
    state.txns.insert("open".into(), TxnMetadata { producer_id: 8, ..open });
    assert!(expired(&state, 1_100, 1_000).is_empty());
    let gone = expired(&state, 1_101, 1_000);
    assert_eq!(gone.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["idle"]);
}

#[test]
fn the_shard_state_replays_records_and_tombstones() {
    let mut state = TxnShardState::default();
    let m = ready(init(None, 1_000, MAX, Some(7), 0).unwrap());
    let key = super::super::records::encode_key("t");
    state.replay(0, &key, Some(&m.encode())).unwrap();
    assert_eq!(state.txns["t"], m);
    state.replay(1, &key, None).unwrap();
    assert!(state.txns.is_empty());
    assert!(state.replay(2, &[9], None).is_err());
}
