//! Weight quantization at conversion time, bit-for-bit as CTranslate2's Python converter
//! (`LayerSpec._quantize` in `specs/model_spec.py`): linear and embedding weights become
//! int8 with one float32 scale per row (`127 / max|row|`, round half to even); the other
//! float tensors become the quantization's float type; scalars are left alone.

use std::fmt;
use std::str::FromStr;

use super::error::ConvertError;
use super::model_bin::DataType;

/// The weight types a converted model can be saved with (`--quantization` of
/// `ct2-transformers-converter`). int16 is not offered: no CPU backend built here runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quantization {
    Float32,
    Float16,
    Bfloat16,
    /// int8 weights, other tensors kept in the checkpoint's float type (here float32).
    Int8,
    Int8Float32,
    Int8Float16,
    Int8Bfloat16,
}

impl Quantization {
    pub const ALL: [Quantization; 7] = [
        Quantization::Float32,
        Quantization::Float16,
        Quantization::Bfloat16,
        Quantization::Int8,
        Quantization::Int8Float32,
        Quantization::Int8Float16,
        Quantization::Int8Bfloat16,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Quantization::Float32 => "float32",
            Quantization::Float16 => "float16",
            Quantization::Bfloat16 => "bfloat16",
            Quantization::Int8 => "int8",
            Quantization::Int8Float32 => "int8_float32",
            Quantization::Int8Float16 => "int8_float16",
            Quantization::Int8Bfloat16 => "int8_bfloat16",
        }
    }

    fn quantizes_to_int8(self) -> bool {
        matches!(
            self,
            Quantization::Int8
                | Quantization::Int8Float32
                | Quantization::Int8Float16
                | Quantization::Int8Bfloat16
        )
    }

    /// The type of the float tensors that are not int8 weights (the converter reads every
    /// checkpoint as float32, so `int8` keeps float32).
    fn float_type(self) -> DataType {
        match self {
            Quantization::Float16 | Quantization::Int8Float16 => DataType::Float16,
            Quantization::Bfloat16 | Quantization::Int8Bfloat16 => DataType::Bfloat16,
            Quantization::Float32 | Quantization::Int8 | Quantization::Int8Float32 => {
                DataType::Float32
            }
        }
    }
}

impl fmt::Display for Quantization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Quantization {
    type Err = ConvertError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantization::ALL
            .into_iter()
            .find(|q| q.name() == s)
            .ok_or_else(|| ConvertError::UnknownQuantization {
                given: s.to_string(),
            })
    }
}

/// A float tensor after quantization: its bytes and, for int8 weights, the row scales.
pub struct Quantized {
    pub dtype: DataType,
    pub data: Vec<u8>,
    pub row_scales: Option<Vec<f32>>,
}

/// Quantizes one float32 tensor of `rows` rows. `quantizable` marks weights that have a
/// `weight_scale` slot in CTranslate2's spec (linear and embedding weights).
pub fn quantize(values: &[f32], rows: usize, quantizable: bool, q: Quantization) -> Quantized {
    if quantizable && q.quantizes_to_int8() {
        let (data, scales) = int8_rows(values, rows);
        return Quantized {
            dtype: DataType::Int8,
            data: data.into_iter().map(|v| v as u8).collect(),
            row_scales: Some(scales),
        };
    }
    // A quantizable weight under a float quantization is simply cast, like every float.
    let dtype = q.float_type();
    Quantized {
        dtype,
        data: float_bytes(values, dtype),
        row_scales: None,
    }
}

/// Little-endian bytes of `values` cast to `dtype` (a float type).
pub fn float_bytes(values: &[f32], dtype: DataType) -> Vec<u8> {
    match dtype {
        DataType::Float16 => values
            .iter()
            .flat_map(|&v| f32_to_f16_bits(v).to_le_bytes())
            .collect(),
        DataType::Bfloat16 => values
            .iter()
            .flat_map(|&v| f32_to_bf16_bits(v).to_le_bytes())
            .collect(),
        _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// Per-row symmetric int8: scale = 127 / max|row| computed in float32 (a zero row gets
/// scale 1, a tiny row a scale that stays finite), value = rint(x * scale).
pub fn int8_rows(values: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let cols = values.len().checked_div(rows).unwrap_or(0);
    let mut data = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(rows);
    // 127 / f32::MAX, the smallest amax whose scale is still a finite float32.
    let min_amax = 127.0f32 / f32::MAX;
    for row in values.chunks(cols.max(1)).take(rows) {
        let mut amax = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if amax == 0.0 {
            amax = 127.0;
        }
        let amax = amax.max(min_amax);
        let scale = 127.0f32 / amax;
        scales.push(scale);
        data.extend(row.iter().map(|&v| (v * scale).round_ties_even() as i8));
    }
    (data, scales)
}

/// IEEE half precision, round to nearest even (numpy's `astype(float16)`).
pub fn f32_to_f16_bits(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x007f_ffff;
    if exponent == 0xff {
        let nan_payload = if mantissa != 0 {
            0x0200 | (mantissa >> 13) as u16
        } else {
            0
        };
        return sign | 0x7c00 | nan_payload;
    }
    let half_exponent = exponent - 127 + 15;
    if half_exponent >= 0x1f {
        return sign | 0x7c00;
    }
    if half_exponent <= 0 {
        // Subnormal half (or zero): shift the full significand into place and round.
        if half_exponent < -10 {
            return sign;
        }
        let significand = mantissa | 0x0080_0000;
        let shift = (14 - half_exponent) as u32;
        let halfway = 1u32 << (shift - 1);
        let remainder = significand & ((1u32 << shift) - 1);
        let mut result = significand >> shift;
        if remainder > halfway || (remainder == halfway && result & 1 == 1) {
            result += 1;
        }
        return sign | result as u16;
    }
    let mut result = ((half_exponent as u32) << 10) | (mantissa >> 13);
    let remainder = mantissa & 0x1fff;
    // A carry out of the mantissa correctly bumps the exponent (up to infinity).
    if remainder > 0x1000 || (remainder == 0x1000 && result & 1 == 1) {
        result += 1;
    }
    sign | result as u16
}

/// bfloat16, round to nearest even (PyTorch's `to(torch.bfloat16)`).
pub fn f32_to_bf16_bits(value: f32) -> u16 {
    if value.is_nan() {
        return 0x7fc0 | ((value.to_bits() >> 16) as u16 & 0x8000);
    }
    let bits = value.to_bits();
    let lsb = (bits >> 16) & 1;
    ((bits + 0x7fff + lsb) >> 16) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_conversion_rounds_to_nearest_even_like_numpy() {
        assert_eq!(f32_to_f16_bits(1.0), 0x3c00);
        assert_eq!(f32_to_f16_bits(-2.0), 0xc000);
        assert_eq!(f32_to_f16_bits(65504.0), 0x7bff);
        assert_eq!(f32_to_f16_bits(65520.0), 0x7c00); // rounds up to infinity
        assert_eq!(f32_to_f16_bits(1.0e-8), 0x0000); // below half the smallest subnormal
        assert_eq!(f32_to_f16_bits(f32::from_bits(0x3380_0000)), 0x0001); // smallest subnormal
        assert_eq!(f32_to_f16_bits(f32::from_bits(0x387f_c000)), 0x03ff); // largest subnormal
                                                                          // 1 + 2^-11 is exactly halfway between 1 and 1 + 2^-10: ties to even (1.0).
        assert_eq!(f32_to_f16_bits(1.0 + 1.0 / 2048.0), 0x3c00);
        assert_eq!(f32_to_f16_bits(1.0 + 3.0 / 2048.0), 0x3c02);
        assert_eq!(f32_to_f16_bits(f32::INFINITY), 0x7c00);
        assert_eq!(f32_to_f16_bits(f32::NAN) & 0x7c00, 0x7c00);
    }

    #[test]
    fn bfloat16_conversion_rounds_to_nearest_even() {
        assert_eq!(f32_to_bf16_bits(1.0), 0x3f80);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80); // tie → even
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82); // tie → even
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x3f80_8001)), 0x3f81);
    }

    #[test]
    fn int8_rows_scale_each_row_by_its_own_maximum() {
        let (data, scales) = int8_rows(&[0.5, -1.0, 0.25, 0.0, 0.0, 0.0], 2);
        assert_eq!(scales, vec![127.0, 1.0]);
        assert_eq!(data, vec![64, -127, 32, 0, 0, 0]); // 63.5 rounds to even 64
    }

    #[test]
    fn quantization_names_round_trip_and_unknown_names_are_refused() {
        for q in Quantization::ALL {
            assert_eq!(q.name().parse::<Quantization>().unwrap(), q);
        }
        assert!("int4".parse::<Quantization>().is_err());
    }
}
