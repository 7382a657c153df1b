//! The harness itself: the emulator starts and the fixtures behave as the
//! other tests assume. When this fails, the machine is the problem (run
//! scripts/emulator-env.sh), not lifeboat.

mod support;

use support::{Aws, Emulator};

#[test]
fn fixtures_create_instances_volumes_and_read_snapshots_back() {
    let emulator = Emulator::start();
    let aws = Aws::new(&emulator);
    let a = aws.run_instance(3, &[("team", "web")]);
    assert!(a.id.starts_with("i-"), "{a:?}");
    assert_eq!(a.volumes.len(), 3, "{a:?}");
    assert_eq!(aws.count_snapshots(), 0);
    aws.terminate(&a.id);

    // Two emulators never share resources.
    let other = Emulator::start();
    assert_ne!(other.port(), emulator.port());
    assert!(Aws::new(&other).lifeboat_snapshots().is_empty());
}
