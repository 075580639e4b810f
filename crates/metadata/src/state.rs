//! The metadata state machine: a pure function from (state, committed command) to the next state.
//!
//! It does no I/O and reads no clock: the Raft node persists each [`Delta`] it returns, and the
//! same committed log always yields the same [`ClusterImage`] on every controller. A command that
//! is no longer valid when it is applied (a topic created twice by racing requests, say) is
//! rejected deterministically and changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::command::Command;
use crate::election;
use crate::error::MetadataError;
use crate::model::{BrokerId, BrokerRegistration, ClusterImage, PartitionState, TopicMetadata};
use crate::{partition_change, topic_config};

/// What a command changed, to persist and to stream to watchers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    /// The image version after this change.
    pub version: u64,
    /// Brokers added or changed.
    pub brokers: Vec<BrokerRegistration>,
    /// Topics added or changed.
    pub topics: Vec<Arc<TopicMetadata>>,
    /// Topics deleted.
    pub deleted_topics: Vec<String>,
    /// The first producer id not yet handed out, when a block was allocated. Controller state
    /// only: brokers and gateways never see it.
    pub next_producer_id: Option<i64>,
}

impl Delta {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.brokers.is_empty()
            && self.topics.is_empty()
            && self.deleted_topics.is_empty()
            && self.next_producer_id.is_none()
    }

    /// Applies this delta to an image (what watchers do).
    pub fn apply_to(&self, image: &mut ClusterImage) {
        image.version = self.version;
        for b in &self.brokers {
            image.brokers.insert(b.id, b.clone());
        }
        for t in &self.topics {
            image.topics.insert(t.name.clone(), t.clone());
        }
        for name in &self.deleted_topics {
            image.topics.remove(name);
        }
    }
}

/// What applying a command produced, for the caller that proposed it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A broker registered with this epoch.
    Registered {
        /// The new broker epoch.
        epoch: i64,
    },
    /// A topic was created or changed.
    Topic(Arc<TopicMetadata>),
    /// One partition's state after an AlterPartition or a reassignment.
    Partition {
        /// The partition as committed.
        state: PartitionState,
        /// The image version containing it.
        version: u64,
    },
    /// A block of producer ids for one broker: `[start, start + len)`.
    ProducerIds {
        /// First id of the block.
        start: i64,
        /// Number of ids in it.
        len: i64,
    },
    /// Applied; nothing to report.
    Done,
}

/// How many producer ids one `AllocateProducerIds` hands out (Kafka's block size).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// The whole replicated state: the image plus the controllers' address book.
#[derive(Debug, Clone, Default)]
pub struct MetadataState {
    /// The current image; its version is the Raft index of the last command that changed it.
    pub image: ClusterImage,
    /// Addresses of the controllers, by node id (from the initial voters and configuration changes).
    pub controllers: BTreeMap<u64, String>,
    /// The first producer id not yet handed out to a broker.
    pub next_producer_id: i64,
}

/// The serialized form of a [`MetadataState`], used for Raft snapshots.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotData {
    version: u64,
    cluster_id: String,
    brokers: Vec<BrokerRegistration>,
    topics: Vec<TopicMetadata>,
    controllers: BTreeMap<u64, String>,
    /// Absent in snapshots taken before producer ids existed.
    #[serde(default)]
    next_producer_id: i64,
}

impl MetadataState {
    /// Encodes the state for a Raft snapshot.
    pub fn encode(&self) -> Vec<u8> {
        let data = SnapshotData {
            version: self.image.version,
            cluster_id: self.image.cluster_id.clone(),
            brokers: self.image.brokers.values().cloned().collect(),
            topics: self.image.topics.values().map(|t| t.as_ref().clone()).collect(),
            controllers: self.controllers.clone(),
            next_producer_id: self.next_producer_id,
        };
        serde_json::to_vec(&data).expect("metadata always serializes")
    }

    /// Decodes a Raft snapshot.
    pub fn decode(bytes: &[u8]) -> Result<Self, MetadataError> {
        let d: SnapshotData =
            serde_json::from_slice(bytes).map_err(|e| MetadataError::Store(format!("corrupt snapshot: {e}")))?;
        Ok(Self {
            image: ClusterImage {
                version: d.version,
                cluster_id: d.cluster_id,
                brokers: d.brokers.into_iter().map(|b| (b.id, b)).collect(),
                topics: d.topics.into_iter().map(|t| (t.name.clone(), Arc::new(t))).collect(),
            },
            controllers: d.controllers,
            next_producer_id: d.next_producer_id,
        })
    }

    /// Applies the command committed at Raft `index`. On error nothing changed.
    pub fn apply(&mut self, index: u64, command: &Command) -> Result<(Outcome, Delta), MetadataError> {
        let mut delta = Delta { version: index, ..Delta::default() };
        let outcome = match command {
            Command::RegisterBroker(reg) => {
                let mut b = reg.clone();
                b.epoch = index as i64;
                b.fenced = false;
                delta.brokers.push(b.clone());
                self.image.brokers.insert(b.id, b);
                let alive = self.live_set();
                self.each_partition(&mut delta, |topic, p| {
                    let epoch = p.partition_epoch;
                    let changed = election::on_broker_back(p, reg.id, election::unclean_allowed(topic));
                    completed(p, epoch, &alive) || changed
                });
                Outcome::Registered { epoch: index as i64 }
            }
            Command::FenceBroker { id, epoch } | Command::ControlledShutdown { id, epoch } => {
                let Some(b) = self.image.brokers.get(id) else {
                    return Err(MetadataError::BrokerNotRegistered { id: *id });
                };
                if b.epoch != *epoch {
                    return Err(MetadataError::StaleBrokerEpoch { id: *id, expected: b.epoch, got: *epoch });
                }
                let mut b = b.clone();
                if !b.fenced {
                    b.fenced = true;
                    delta.brokers.push(b.clone());
                    self.image.brokers.insert(b.id, b);
                }
                let alive = self.live_set();
                let gone = *id;
                self.each_partition(&mut delta, |topic, p| {
                    let epoch = p.partition_epoch;
                    let unclean = election::unclean_allowed(topic);
                    let changed = election::on_broker_gone(p, gone, &|x| alive.contains(&x), unclean);
                    completed(p, epoch, &alive) || changed
                });
                Outcome::Done
            }
            Command::CreateTopic(topic) => {
                if self.image.topics.contains_key(&topic.name) {
                    return Err(MetadataError::TopicAlreadyExists { name: topic.name.clone() });
                }
                self.check_replicas(topic.partitions.iter().flat_map(|p| p.replicas.iter()))?;
                let mut topic = topic.clone();
                self.lead_by_live_brokers(&mut topic.partitions);
                let t = Arc::new(topic);
                delta.topics.push(t.clone());
                self.image.topics.insert(t.name.clone(), t.clone());
                Outcome::Topic(t)
            }
            Command::DeleteTopic { name } => {
                if self.image.topics.remove(name).is_none() {
                    return Err(MetadataError::UnknownTopic { name: name.clone() });
                }
                delta.deleted_topics.push(name.clone());
                Outcome::Done
            }
            Command::CreatePartitions { topic, topic_id, partitions } => {
                let current = self.topic(topic)?;
                if &current.id != topic_id {
                    return Err(MetadataError::UnknownTopic { name: topic.clone() });
                }
                let expected_first = current.partitions.len() as i32;
                if partitions.first().map(|p| p.partition) != Some(expected_first) {
                    return Err(MetadataError::InvalidPartitions {
                        count: expected_first + partitions.len() as i32,
                        max: crate::topics::MAX_PARTITIONS,
                    });
                }
                self.check_replicas(partitions.iter().flat_map(|p| p.replicas.iter()))?;
                let mut t = current.as_ref().clone();
                let mut partitions = partitions.clone();
                self.lead_by_live_brokers(&mut partitions);
                t.partitions.extend(partitions);
                let t = Arc::new(t);
                delta.topics.push(t.clone());
                self.image.topics.insert(t.name.clone(), t.clone());
                Outcome::Topic(t)
            }
            Command::AlterConfigs { topic, set, delete } => {
                let current = self.topic(topic)?;
                let mut t = current.as_ref().clone();
                for key in delete {
                    t.configs.remove(key);
                }
                t.configs.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
                topic_config::validate(&t.configs)?;
                crate::topics::check_min_isr(&t.configs, t.replication_factor() as i32)?;
                let t = Arc::new(t);
                delta.topics.push(t.clone());
                self.image.topics.insert(t.name.clone(), t.clone());
                Outcome::Topic(t)
            }
            Command::AlterPartition(r) => {
                let (topic, i) = self.locate(&r.topic, &r.topic_id, r.partition)?;
                partition_change::check_alter(&self.image, &r.topic, &topic.partitions[i], r)?;
                let alive = self.live_set();
                let mut p = topic.partitions[i].clone();
                p.isr.clone_from(&r.new_isr);
                partition_change::maybe_complete(&mut p, &|b| alive.contains(&b));
                let state = self.commit_partition(&mut delta, &topic, i, p);
                Outcome::Partition { state, version: index }
            }
            Command::ReassignPartition { topic: name, topic_id, partition, target } => {
                let (topic, i) = self.locate(name, topic_id, *partition)?;
                let alive = self.live_set();
                let alive = |b: BrokerId| alive.contains(&b);
                let mut p = topic.partitions[i].clone();
                match target {
                    Some(target) => {
                        partition_change::check_target(&self.image, &topic, &p, target)?;
                        partition_change::start(&topic, &mut p, target, &alive)?;
                    }
                    None => partition_change::cancel(&topic, &mut p, &alive)?,
                }
                let state = self.commit_partition(&mut delta, &topic, i, p);
                Outcome::Partition { state, version: index }
            }
            Command::AllocateProducerIds { broker, broker_epoch } => {
                let Some(b) = self.image.brokers.get(broker) else {
                    return Err(MetadataError::BrokerNotRegistered { id: *broker });
                };
                if b.epoch != *broker_epoch {
                    return Err(MetadataError::StaleBrokerEpoch { id: *broker, expected: b.epoch, got: *broker_epoch });
                }
                let start = self.next_producer_id;
                self.next_producer_id = start + PRODUCER_ID_BLOCK_SIZE;
                delta.next_producer_id = Some(self.next_producer_id);
                Outcome::ProducerIds { start, len: PRODUCER_ID_BLOCK_SIZE }
            }
        };
        self.image.version = index;
        Ok((outcome, delta))
    }

    /// New partitions planned with a broker that was fenced before the plan committed: the first
    /// live replica leads instead (none: no leader until one registers).
    fn lead_by_live_brokers(&self, partitions: &mut [crate::model::PartitionState]) {
        let live = |b: &BrokerId| self.image.brokers.get(b).is_some_and(|r| !r.fenced);
        for p in partitions {
            if !live(&p.leader) {
                p.leader = p.replicas.iter().copied().find(|b| live(b)).unwrap_or(-1);
            }
        }
    }

    /// Ids of the registered, unfenced brokers.
    fn live_set(&self) -> BTreeSet<BrokerId> {
        self.image.live_brokers().map(|b| b.id).collect()
    }

    /// The topic `name` (with id `topic_id`) and the index of its partition `partition`.
    fn locate(&self, name: &str, topic_id: &str, partition: i32) -> Result<(Arc<TopicMetadata>, usize), MetadataError> {
        let topic = self.topic(name)?;
        if topic.id != topic_id {
            return Err(MetadataError::UnknownTopic { name: name.to_string() });
        }
        match usize::try_from(partition).ok().filter(|i| *i < topic.partitions.len()) {
            Some(i) => Ok((topic, i)),
            None => Err(MetadataError::UnknownPartition { topic: name.to_string(), partition }),
        }
    }

    /// Replaces partition `i` of `topic` with `p` if it changed (bumping its partition epoch once)
    /// and records the topic in `delta`. Returns the partition as it now is.
    fn commit_partition(
        &mut self,
        delta: &mut Delta,
        topic: &TopicMetadata,
        i: usize,
        mut p: PartitionState,
    ) -> PartitionState {
        let before = &topic.partitions[i];
        if p == *before {
            return p;
        }
        p.partition_epoch = before.partition_epoch + 1;
        let mut t = topic.clone();
        t.partitions[i] = p.clone();
        let t = Arc::new(t);
        delta.topics.push(t.clone());
        self.image.topics.insert(t.name.clone(), t);
        p
    }

    fn topic(&self, name: &str) -> Result<Arc<TopicMetadata>, MetadataError> {
        self.image.topics.get(name).cloned().ok_or_else(|| MetadataError::UnknownTopic { name: name.to_string() })
    }

    fn check_replicas<'a>(&self, mut replicas: impl Iterator<Item = &'a BrokerId>) -> Result<(), MetadataError> {
        match replicas.find(|b| !self.image.brokers.contains_key(b)) {
            Some(b) => Err(MetadataError::BrokerNotRegistered { id: *b }),
            None => Ok(()),
        }
    }

    /// Runs `f` over every partition; topics with a changed partition go into `delta`.
    fn each_partition(
        &mut self,
        delta: &mut Delta,
        mut f: impl FnMut(&TopicMetadata, &mut crate::model::PartitionState) -> bool,
    ) {
        let mut changed = Vec::new();
        for topic in self.image.topics.values() {
            // Clone a topic only when one of its partitions changes.
            let mut updated: Option<TopicMetadata> = None;
            for (i, original) in topic.partitions.iter().enumerate() {
                let mut p = original.clone();
                if f(topic, &mut p) {
                    updated.get_or_insert_with(|| topic.as_ref().clone()).partitions[i] = p;
                }
            }
            if let Some(t) = updated {
                changed.push(Arc::new(t));
            }
        }
        for t in changed {
            self.image.topics.insert(t.name.clone(), t.clone());
            delta.topics.push(t);
        }
    }
}

/// Completes `p`'s reassignment if its ISR now allows it; when it does, the partition epoch ends
/// one above `epoch` (its value before this command). Returns whether it completed.
fn completed(p: &mut PartitionState, epoch: i32, alive: &BTreeSet<BrokerId>) -> bool {
    let done = partition_change::maybe_complete(p, &|b| alive.contains(&b));
    if done {
        p.partition_epoch = epoch + 1;
    }
    done
}

#[cfg(test)]
#[path = "state_partition_tests.rs"]
mod partition_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AlterPartition;

    fn broker(id: i32) -> BrokerRegistration {
        BrokerRegistration::new(id, format!("127.0.0.1:{}", 9000 + id), None)
    }

    fn topic(name: &str, replicas: &[&[i32]]) -> TopicMetadata {
        TopicMetadata {
            name: name.into(),
            id: format!("id-{name}"),
            partitions: replicas.iter().enumerate().map(|(i, r)| PartitionState::new(i as i32, r.to_vec())).collect(),
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn fencing_a_leader_elects_from_the_isr_and_registration_brings_leaderless_partitions_back() {
        let mut s = MetadataState::default();
        for (i, id) in [1, 2, 3].into_iter().enumerate() {
            s.apply(i as u64 + 1, &Command::RegisterBroker(broker(id))).unwrap();
        }
        s.apply(4, &Command::CreateTopic(topic("t", &[&[1, 2, 3], &[2, 3, 1], &[1]]))).unwrap();
        let (_, delta) = s.apply(5, &Command::FenceBroker { id: 1, epoch: 1 }).unwrap();
        assert_eq!(delta.version, 5);
        let t = s.image.topic("t").unwrap();
        assert_eq!((t.partitions[0].leader, t.partitions[0].leader_epoch), (2, 1));
        assert_eq!(t.partitions[0].isr, vec![2, 3]);
        assert_eq!((t.partitions[1].leader, t.partitions[1].leader_epoch), (2, 0), "a follower left");
        assert_eq!((t.partitions[2].leader, t.partitions[2].isr.clone()), (-1, vec![1]));
        assert!(s.image.brokers[&1].fenced);

        let stale = s.apply(6, &Command::FenceBroker { id: 2, epoch: 99 });
        assert!(matches!(stale, Err(MetadataError::StaleBrokerEpoch { .. })));

        let (outcome, _) = s.apply(7, &Command::RegisterBroker(broker(1))).unwrap();
        assert_eq!(outcome, Outcome::Registered { epoch: 7 });
        let t = s.image.topic("t").unwrap();
        assert_eq!((t.partitions[2].leader, t.partitions[2].leader_epoch), (1, 2));
        assert!(!s.image.brokers[&1].fenced);
        assert_eq!(s.image.version, 7);
    }

    #[test]
    fn invalid_commands_change_nothing() {
        let mut s = MetadataState::default();
        s.apply(1, &Command::RegisterBroker(broker(1))).unwrap();
        s.apply(2, &Command::CreateTopic(topic("t", &[&[1]]))).unwrap();
        let before = s.encode();
        assert!(s.apply(3, &Command::CreateTopic(topic("t", &[&[1]]))).is_err());
        assert!(s.apply(4, &Command::CreateTopic(topic("u", &[&[5]]))).is_err());
        assert!(s.apply(5, &Command::DeleteTopic { name: "nope".into() }).is_err());
        let bad = [("retention.ms".to_string(), "soon".to_string())].into();
        assert!(s.apply(6, &Command::AlterConfigs { topic: "t".into(), set: bad, delete: vec![] }).is_err());
        assert_eq!(s.encode(), before);
    }

    #[test]
    fn producer_id_blocks_follow_each_other_and_survive_a_snapshot() {
        let mut s = MetadataState::default();
        s.apply(1, &Command::RegisterBroker(broker(1))).unwrap();
        let (first, delta) = s.apply(2, &Command::AllocateProducerIds { broker: 1, broker_epoch: 1 }).unwrap();
        assert_eq!(first, Outcome::ProducerIds { start: 0, len: PRODUCER_ID_BLOCK_SIZE });
        assert_eq!(delta.next_producer_id, Some(PRODUCER_ID_BLOCK_SIZE));
        let stale = s.apply(3, &Command::AllocateProducerIds { broker: 1, broker_epoch: 2 });
        assert!(matches!(stale, Err(MetadataError::StaleBrokerEpoch { .. })), "{stale:?}");
        let mut restored = MetadataState::decode(&s.encode()).unwrap();
        let (second, _) = restored.apply(4, &Command::AllocateProducerIds { broker: 1, broker_epoch: 1 }).unwrap();
        assert_eq!(second, Outcome::ProducerIds { start: PRODUCER_ID_BLOCK_SIZE, len: PRODUCER_ID_BLOCK_SIZE });
    }

    #[test]
    fn snapshots_round_trip() {
        let mut s = MetadataState::default();
        s.image.cluster_id = "c".into();
        s.controllers.insert(1, "127.0.0.1:1".into());
        s.apply(1, &Command::RegisterBroker(broker(1))).unwrap();
        s.apply(2, &Command::CreateTopic(topic("t", &[&[1], &[1]]))).unwrap();
        let back = MetadataState::decode(&s.encode()).unwrap();
        assert_eq!(back.encode(), s.encode());
        assert_eq!(back.image.version, 2);
    }

    mod determinism {
        use proptest::prelude::*;

        use super::*;

        fn command() -> impl Strategy<Value = Command> {
            let name = prop::sample::select(vec!["a", "b", "c"]);
            prop_oneof![
                (1..5i32).prop_map(|id| Command::RegisterBroker(broker(id))),
                (1..5i32, 0..12i64).prop_map(|(id, epoch)| Command::FenceBroker { id, epoch }),
                (1..5i32, 0..12i64).prop_map(|(id, epoch)| Command::ControlledShutdown { id, epoch }),
                (name.clone(), prop::collection::vec(prop::sample::subsequence(vec![1, 2, 3, 4], 1..4), 1..4))
                    .prop_map(|(n, parts)| {
                        let refs: Vec<&[i32]> = parts.iter().map(|p| p.as_slice()).collect();
                        Command::CreateTopic(topic(n, &refs))
                    }),
                name.clone().prop_map(|n| Command::DeleteTopic { name: n.into() }),
                (name.clone(), prop::sample::select(vec!["1", "2", "x"])).prop_map(|(n, v)| Command::AlterConfigs {
                    topic: n.into(),
                    set: [("min.insync.replicas".to_string(), v.to_string())].into(),
                    delete: vec![],
                }),
            ]
        }

        /// One step of a random log: a command as is, or a partition change filled in from the
        /// state it is applied to, so that most are current as a leader's or an operator's would be.
        #[derive(Debug, Clone)]
        enum Step {
            Plain(Command),
            /// AlterPartition of a partition (index modulo the count) by its leader, or by `sender`
            /// when set, proposing the leader plus the replicas `keep` picks; `stale` 1..=3 makes
            /// the partition epoch, leader epoch or broker epoch one too low.
            Alter {
                topic: &'static str,
                partition: usize,
                keep: Vec<bool>,
                sender: Option<i32>,
                stale: u8,
            },
            /// Reassigns a partition to `target`, or cancels (`None`).
            Reassign {
                topic: &'static str,
                partition: usize,
                target: Option<Vec<i32>>,
            },
            /// Fences a broker (or shuts it down) with its current epoch.
            Fence {
                id: i32,
                shutdown: bool,
            },
        }

        fn step() -> impl Strategy<Value = Step> {
            let name = prop::sample::select(vec!["a", "b", "c"]);
            let target = prop::sample::subsequence(vec![1, 2, 3, 4, 5], 1..4).prop_shuffle();
            prop_oneof![
                5 => command().prop_map(Step::Plain),
                4 => (name.clone(), 0..4usize, prop::collection::vec(any::<bool>(), 5), prop::option::weighted(0.15, 1..5i32), 0..8u8)
                    .prop_map(|(topic, partition, keep, sender, stale)| Step::Alter { topic, partition, keep, sender, stale }),
                2 => (name, 0..4usize, prop::option::weighted(0.8, target))
                    .prop_map(|(topic, partition, target)| Step::Reassign { topic, partition, target }),
                1 => (1..5i32, any::<bool>()).prop_map(|(id, shutdown)| Step::Fence { id, shutdown }),
            ]
        }

        /// The start of every random log: four brokers and two replicated topics.
        fn prelude() -> Vec<Command> {
            let mut log: Vec<Command> = (1..=4).map(|id| Command::RegisterBroker(broker(id))).collect();
            log.push(Command::CreateTopic(topic("a", &[&[1, 2, 3], &[2, 3, 4]])));
            log.push(Command::CreateTopic(topic("b", &[&[1, 2], &[3, 4], &[4]])));
            log
        }

        /// The command `step` stands for, given the state it will be applied to.
        fn materialize(s: &MetadataState, step: &Step) -> Command {
            let located = |topic: &str, partition: usize| {
                let t = s.image.topic(topic)?;
                let i = partition % t.partitions.len().max(1);
                Some((t.id.clone(), t.partitions.get(i)?.clone()))
            };
            match step {
                Step::Plain(c) => c.clone(),
                Step::Alter { topic, partition, keep, sender, stale } => {
                    let (topic_id, p) =
                        located(topic, *partition).unwrap_or_else(|| ("none".into(), PartitionState::new(0, vec![1])));
                    let leader = if p.leader == -1 { p.replicas[0] } else { p.leader };
                    let mut new_isr = vec![leader];
                    new_isr.extend(p.replicas.iter().zip(keep).filter(|(b, k)| **k && **b != leader).map(|(b, _)| *b));
                    let broker_id = sender.unwrap_or(leader);
                    let broker_epoch = s.image.brokers.get(&broker_id).map_or(0, |b| b.epoch);
                    let lower = |which: u8| i32::from(*stale == which);
                    Command::AlterPartition(AlterPartition {
                        topic: topic.to_string(),
                        topic_id,
                        partition: p.partition,
                        broker_id,
                        broker_epoch: broker_epoch - i64::from(lower(3)),
                        leader_epoch: p.leader_epoch - lower(2),
                        partition_epoch: p.partition_epoch - lower(1),
                        new_isr,
                    })
                }
                Step::Fence { id, shutdown } => {
                    let (id, epoch) = (*id, s.image.brokers.get(id).map_or(0, |b| b.epoch));
                    if *shutdown {
                        Command::ControlledShutdown { id, epoch }
                    } else {
                        Command::FenceBroker { id, epoch }
                    }
                }
                Step::Reassign { topic, partition, target } => {
                    let (topic_id, p) =
                        located(topic, *partition).unwrap_or_else(|| ("none".into(), PartitionState::new(0, vec![1])));
                    Command::ReassignPartition {
                        topic: topic.to_string(),
                        topic_id,
                        partition: p.partition,
                        target: target.clone(),
                    }
                }
            }
        }

        /// Every leader is a replica in the ISR and alive (or -1); the ISR is a non-empty subset
        /// of the replicas; a reassignment's adding and removing replicas are disjoint replicas.
        fn check_invariants(s: &MetadataState) -> Result<(), TestCaseError> {
            for t in s.image.topics.values() {
                for p in &t.partitions {
                    prop_assert!(!p.isr.is_empty(), "{p:?}");
                    prop_assert!(p.isr.iter().all(|b| p.replicas.contains(b)), "replicas ⊇ isr: {p:?}");
                    prop_assert!(p.adding_replicas.iter().all(|b| p.replicas.contains(b)), "adding ⊆ replicas: {p:?}");
                    prop_assert!(
                        p.removing_replicas.iter().all(|b| p.replicas.contains(b)),
                        "removing ⊆ replicas: {p:?}"
                    );
                    prop_assert!(p.adding_replicas.iter().all(|b| !p.removing_replicas.contains(b)), "{p:?}");
                    let mut distinct = p.replicas.clone();
                    distinct.sort_unstable();
                    distinct.dedup();
                    prop_assert_eq!(distinct.len(), p.replicas.len(), "{:?}", p);
                    if p.leader != -1 {
                        prop_assert!(p.isr.contains(&p.leader) && p.replicas.contains(&p.leader), "{p:?}");
                        prop_assert!(!s.image.brokers[&p.leader].fenced, "{p:?}");
                    }
                }
            }
            Ok(())
        }

        proptest! {
            /// The same committed log yields the same state, and a snapshot taken half-way then
            /// continued yields it too (a follower catching up from a snapshot). The invariants
            /// hold after every command.
            #[test]
            fn applying_the_same_log_always_yields_the_same_state(steps in prop::collection::vec(step(), 1..80)) {
                let mut scratch = MetadataState::default();
                let mut commands = prelude();
                for (i, command) in commands.iter().enumerate() {
                    scratch.apply(i as u64 + 1, command).unwrap();
                }
                for step in &steps {
                    let command = materialize(&scratch, step);
                    let _ = scratch.apply(commands.len() as u64 + 1, &command);
                    check_invariants(&scratch)?;
                    commands.push(command);
                }
                let run = |cmds: &[Command], start: MetadataState, first_index: u64| {
                    let mut s = start;
                    let results: Vec<bool> = cmds
                        .iter()
                        .enumerate()
                        .map(|(i, c)| s.apply(first_index + i as u64, c).is_ok())
                        .collect();
                    (s, results)
                };
                let (a, ra) = run(&commands, MetadataState::default(), 1);
                let (b, rb) = run(&commands, MetadataState::default(), 1);
                prop_assert_eq!(a.encode(), b.encode());
                prop_assert_eq!(a.encode(), scratch.encode());
                prop_assert_eq!(ra, rb);
                let half = commands.len() / 2;
                let (first, _) = run(&commands[..half], MetadataState::default(), 1);
                let restored = MetadataState::decode(&first.encode()).unwrap();
                let (c, _) = run(&commands[half..], restored, 1 + half as u64);
                prop_assert_eq!(c.encode(), a.encode());
            }
        }
    }
}
