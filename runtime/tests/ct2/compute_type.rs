//! The compute type reported is the one CTranslate2 runs: CTranslate2 refuses an explicit
//! type the device cannot run, so every type the backend resolves must load as given.

use crate::common::{fixtures, Scratch};
use runtime::ct2::{
    convert, effective_compute_type, ComputeType, Ct2Device, Ct2LoadOptions, Ct2Model, Quantization,
};

#[test]
fn ctranslate2_itself_refuses_int8_float16_on_cpu_instead_of_falling_back() {
    let dir = Scratch::new("ct2-refuse");
    convert(
        &fixtures().join("gpt2-tiny"),
        dir.path(),
        Quantization::Int8Float16,
    )
    .unwrap();
    let config = ct2rs::Config {
        compute_type: ct2rs::ComputeType::INT8_FLOAT16,
        ..Default::default()
    };
    let err = ct2rs::sys::Generator::new(dir.path(), &config).unwrap_err();
    assert!(err.to_string().contains("int8_float16"), "{err}");
}

#[test]
fn every_requested_compute_type_loads_on_cpu_as_its_effective_type() {
    for (model, quantization) in [
        ("gpt2-tiny", Quantization::Float32),
        ("gpt2-tiny", Quantization::Int8Float16),
        ("t5-tiny", Quantization::Float32),
        ("t5-tiny", Quantization::Int8Float16),
    ] {
        let dir = Scratch::new("ct2-types");
        let converted = convert(&fixtures().join(model), dir.path(), quantization).unwrap();
        for requested in ComputeType::ALL {
            let options = Ct2LoadOptions {
                device: Ct2Device::Cpu,
                device_index: 0,
                compute_type: requested,
                threads: 1,
            };
            let loaded = Ct2Model::load(&converted.dir, converted.architecture, &options)
                .unwrap_or_else(|e| panic!("{model} {quantization} as {requested}: {e}"));
            let effective =
                effective_compute_type(requested, Ct2Device::Cpu, converted.architecture);
            assert_eq!(loaded.requested_compute_type(), requested);
            assert_eq!(loaded.compute_type(), effective);
            // Never a type CTranslate2 would resolve again on its own.
            assert!(
                !matches!(effective, ComputeType::Auto | ComputeType::Int8),
                "{effective}"
            );
        }
    }
}
