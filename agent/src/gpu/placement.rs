//! Which GPU each replica of a deployment runs on.
//!
//! Admission fixes, per GPU, how many replicas fit in the memory that was free at deploy
//! time. Replicas then go to the GPU holding the fewest of them that still has room (lowest
//! index on ties): spread over all GPUs first, then several per GPU as memory allows. The
//! capacity is not recomputed from live free memory, which the deployment's own replicas
//! consume as they load.

use serde::{Deserialize, Serialize};

/// How many replicas of one deployment a GPU can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuCapacity {
    /// NVML index.
    pub gpu: u32,
    pub replicas: u32,
}

/// Where the model of a deployment's replicas runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionDevice {
    Cpu,
    Cuda,
}

/// Where one replica runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "device", rename_all = "lowercase")]
pub enum ReplicaDevice {
    /// On the CPU. `gpu` is the GPU the replica was admitted on when `[gpu] execution = "cpu"`
    /// stands in for CUDA; `None` for a CPU device class.
    Cpu { gpu: Option<u32> },
    /// On the CUDA device with this NVML index.
    Cuda { gpu: u32 },
}

impl ReplicaDevice {
    /// The GPU this replica holds a place on, if any.
    pub fn gpu(&self) -> Option<u32> {
        match *self {
            ReplicaDevice::Cpu { gpu } => gpu,
            ReplicaDevice::Cuda { gpu } => Some(gpu),
        }
    }
}

/// The GPU for the next replica, given the GPUs of the replicas already running: the least
/// loaded GPU that still has room, lowest index on ties. `None` when every GPU is full.
pub fn next_gpu(capacity: &[GpuCapacity], assigned: &[u32]) -> Option<u32> {
    capacity
        .iter()
        .map(|slot| {
            let used = assigned.iter().filter(|gpu| **gpu == slot.gpu).count();
            (slot, u32::try_from(used).unwrap_or(u32::MAX))
        })
        .filter(|(slot, used)| *used < slot.replicas)
        .min_by_key(|(slot, used)| (*used, slot.gpu))
        .map(|(slot, _)| slot.gpu)
}

/// The admitted placement of one deployment: where its replicas may go, up to how many.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    execution: ExecutionDevice,
    /// Empty for a CPU device class.
    capacity: Vec<GpuCapacity>,
    max_replicas: u32,
}

impl Placement {
    /// A CPU device class: no GPUs, up to `max_replicas` replicas.
    pub fn cpu(max_replicas: u32) -> Self {
        Placement {
            execution: ExecutionDevice::Cpu,
            capacity: Vec::new(),
            max_replicas,
        }
    }

    /// A GPU device class admitted with this per-GPU capacity.
    pub(crate) fn on_gpus(
        execution: ExecutionDevice,
        capacity: Vec<GpuCapacity>,
        max_replicas: u32,
    ) -> Self {
        Placement {
            execution,
            capacity,
            max_replicas,
        }
    }

    pub fn execution(&self) -> ExecutionDevice {
        self.execution
    }

    /// Replicas that fit on each GPU (empty for a CPU class).
    pub fn capacity(&self) -> &[GpuCapacity] {
        &self.capacity
    }

    /// The most replicas this placement will ever hand out: `maxReplicas`, or fewer when
    /// the GPUs hold fewer.
    pub fn max_replicas(&self) -> u32 {
        if self.capacity.is_empty() {
            return self.max_replicas;
        }
        let room = self
            .capacity
            .iter()
            .fold(0u32, |sum, slot| sum.saturating_add(slot.replicas));
        room.min(self.max_replicas)
    }

    /// Where the next replica goes, given the running ones; `None` once `maxReplicas` run
    /// or the GPUs are full. The batcher calls this when it scales up.
    pub fn next_replica(&self, running: &[ReplicaDevice]) -> Option<ReplicaDevice> {
        let running_count = u32::try_from(running.len()).unwrap_or(u32::MAX);
        if running_count >= self.max_replicas() {
            return None;
        }
        if self.capacity.is_empty() {
            return Some(ReplicaDevice::Cpu { gpu: None });
        }
        let assigned: Vec<u32> = running.iter().filter_map(ReplicaDevice::gpu).collect();
        let gpu = next_gpu(&self.capacity, &assigned)?;
        Some(match self.execution {
            ExecutionDevice::Cuda => ReplicaDevice::Cuda { gpu },
            ExecutionDevice::Cpu => ReplicaDevice::Cpu { gpu: Some(gpu) },
        })
    }

    /// The first `count` replicas (fewer if the placement runs out of room).
    pub fn initial(&self, count: u32) -> Vec<ReplicaDevice> {
        let mut replicas = Vec::new();
        while u32::try_from(replicas.len()).unwrap_or(u32::MAX) < count {
            match self.next_replica(&replicas) {
                Some(replica) => replicas.push(replica),
                None => break,
            }
        }
        replicas
    }
}
