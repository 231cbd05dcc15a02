//! Replicas spread over the GPUs first, then pack several per GPU as memory allows.

use crate::common::{cuda_policy, Deploy, FakeHost};
use fake_nvml::FakeHardware;
use gpu_agent::gpu::{next_gpu, GpuCapacity, ReplicaDevice};

fn cuda(gpus: &[u32]) -> Vec<ReplicaDevice> {
    gpus.iter()
        .map(|gpu| ReplicaDevice::Cuda { gpu: *gpu })
        .collect()
}

#[test]
fn replicas_spread_over_all_gpus_before_doubling_up() {
    // 4× T4, 4 GiB per replica: (15360 − 512) / 4096 = 3 per GPU.
    let host = FakeHost::new(&FakeHardware::t4(4));
    let placement = host
        .admit(
            "g4dn.12xlarge",
            &Deploy::needing_mib(4096, 0, 1).replicas(6, 50),
            &cuda_policy(),
        )
        .expect("six replicas fit on four T4s");

    assert_eq!(placement.initial(6), cuda(&[0, 1, 2, 3, 0, 1]));
    assert_eq!(
        placement.capacity(),
        [0, 1, 2, 3].map(|gpu| GpuCapacity { gpu, replicas: 3 })
    );
}

#[test]
fn scaling_stops_when_every_gpu_is_full_even_below_max_replicas() {
    let host = FakeHost::new(&FakeHardware::t4(4));
    let placement = host
        .admit(
            "g4dn.12xlarge",
            &Deploy::needing_mib(4096, 0, 1).replicas(1, 50),
            &cuda_policy(),
        )
        .expect("admitted");

    assert_eq!(placement.max_replicas(), 12);
    let all = placement.initial(50);
    assert_eq!(all.len(), 12);
    assert_eq!(placement.next_replica(&all), None);
}

#[test]
fn scaling_stops_at_max_replicas_even_with_room_left() {
    let host = FakeHost::new(&FakeHardware::a10g(8));
    let placement = host
        .admit(
            "g5.48xlarge",
            &Deploy::gpt2_small().replicas(2, 3),
            &cuda_policy(),
        )
        .expect("admitted");

    let running = placement.initial(10);
    assert_eq!(running, cuda(&[0, 1, 2]));
    assert_eq!(placement.next_replica(&running), None);
}

#[test]
fn a_replica_added_after_a_scale_down_fills_the_emptied_gpu() {
    let host = FakeHost::new(&FakeHardware::t4(4));
    let placement = host
        .admit(
            "g4dn.12xlarge",
            &Deploy::needing_mib(4096, 0, 1).replicas(1, 50),
            &cuda_policy(),
        )
        .expect("admitted");

    // GPUs 0..3 hold one replica each, 0 and 1 a second; the replica on GPU 2 was released.
    let running = cuda(&[0, 1, 3, 0, 1]);
    assert_eq!(
        placement.next_replica(&running),
        Some(ReplicaDevice::Cuda { gpu: 2 })
    );
}

#[test]
fn gpus_with_less_free_memory_take_fewer_replicas() {
    // GPU 1 has 8 GiB in use: (15360 − 8192 − 512) / 4096 = 1 replica there, 3 elsewhere.
    let host = FakeHost::new(&FakeHardware::t4(4).with_memory_used(1, 8192));
    let placement = host
        .admit(
            "g4dn.12xlarge",
            &Deploy::needing_mib(4096, 0, 1).replicas(1, 50),
            &cuda_policy(),
        )
        .expect("admitted");

    assert_eq!(placement.initial(10), cuda(&[0, 1, 2, 3, 0, 2, 3, 0, 2, 3]));
}

#[test]
fn next_gpu_prefers_the_least_loaded_gpu_with_room_lowest_index_first() {
    let capacity = [
        GpuCapacity {
            gpu: 0,
            replicas: 2,
        },
        GpuCapacity {
            gpu: 1,
            replicas: 0,
        },
        GpuCapacity {
            gpu: 2,
            replicas: 2,
        },
    ];
    assert_eq!(next_gpu(&capacity, &[]), Some(0));
    assert_eq!(next_gpu(&capacity, &[0]), Some(2));
    assert_eq!(next_gpu(&capacity, &[0, 2]), Some(0));
    assert_eq!(next_gpu(&capacity, &[0, 2, 0]), Some(2));
    assert_eq!(next_gpu(&capacity, &[0, 2, 0, 2]), None);
    // An assignment to a GPU the placement does not know takes no room.
    assert_eq!(next_gpu(&capacity, &[7, 7]), Some(0));
}
