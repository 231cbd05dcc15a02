//! GPU inventory (NVML), device-class catalog, admission checks and replica placement.
