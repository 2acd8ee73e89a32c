//! Tests of the GGUF reader: round trips through an independent writer, dequantization against
//! a plain f64 reference, a real model file, and malformed files.

mod gguf_common;

use gguf_common::{put_str, put_u32, put_u64, shared_file, GgufBuilder};
use tinyllm_convert::gguf::{GgmlType, GgufError, GgufFile, MetaArray, MetaValue};

// ggml type ids used by the tests.
const F32: u32 = 0;
const F16: u32 = 1;
const Q4_0: u32 = 2;
const Q4_1: u32 = 3;
const Q8_0: u32 = 8;
const Q6_K: u32 = 14;
const BF16: u32 = 30;

/// Small deterministic generator (xorshift64*) so the tests need no extra crate.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// Returns a random finite f16 bit pattern (any sign, exponent 0..=30).
    fn finite_f16(&mut self) -> u16 {
        loop {
            let bits = self.next_u64() as u16;
            if (bits >> 10) & 0x1F != 0x1F {
                return bits;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reference dequantization, written from the format description with f64 arithmetic.
//
// For these formats the exact value d*q (+ m) fits in an f64 mantissa, so rounding it once to
// f32 gives the same bits as ggml's f32 computation, whose product is exact and whose sum is
// rounded once.

/// 2^exponent, exact. `f64::powi` promises no precision, and Miri perturbs its result.
fn pow2(exponent: i32) -> f64 {
    f64::from_bits(((exponent + 1023) as u64) << 52)
}

fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1F);
    let mantissa = f64::from(bits & 0x3FF);
    match exponent {
        0 => sign * mantissa * pow2(-24),
        31 if mantissa == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + mantissa / 1024.0) * pow2(exponent - 15),
    }
}

fn le16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// Returns weight `j` (0..32) of a 16-byte nibble array: low nibbles are 0..16, high 16..32.
fn nibble(qs: &[u8], j: usize) -> u8 {
    if j < 16 {
        qs[j] & 0x0F
    } else {
        qs[j - 16] >> 4
    }
}

/// A reference dequantizer: raw tensor bytes in, f32 values out.
type Reference = fn(&[u8]) -> Vec<f32>;

fn reference_q8_0(data: &[u8]) -> Vec<f32> {
    let mut out = Vec::new();
    for block in data.chunks(34) {
        let d = f16_to_f64(le16(block, 0));
        for &q in &block[2..34] {
            out.push((d * f64::from(q as i8)) as f32);
        }
    }
    out
}

fn reference_q4_0(data: &[u8]) -> Vec<f32> {
    let mut out = Vec::new();
    for block in data.chunks(18) {
        let d = f16_to_f64(le16(block, 0));
        for j in 0..32 {
            let q = f64::from(nibble(&block[2..18], j)) - 8.0;
            out.push((q * d) as f32);
        }
    }
    out
}

fn reference_q4_1(data: &[u8]) -> Vec<f32> {
    let mut out = Vec::new();
    for block in data.chunks(20) {
        let d = f16_to_f64(le16(block, 0));
        let m = f16_to_f64(le16(block, 2));
        for j in 0..32 {
            let q = f64::from(nibble(&block[4..20], j));
            out.push((q * d + m) as f32);
        }
    }
    out
}

fn reference_f16(data: &[u8]) -> Vec<f32> {
    data.chunks(2)
        .map(|c| f16_to_f64(le16(c, 0)) as f32)
        .collect()
}

fn reference_bf16(data: &[u8]) -> Vec<f32> {
    // bfloat16 is the upper half of an f32.
    data.chunks(2)
        .map(|c| f32::from_bits(u32::from(le16(c, 0)) << 16))
        .collect()
}

fn assert_same_bits(tensor: &str, got: &[f32], expected: &[f32]) {
    assert_eq!(got.len(), expected.len(), "{tensor}: element count");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(
            g.to_bits(),
            e.to_bits(),
            "{tensor}: element {i} is {g:e} ({:#010x}), reference {e:e} ({:#010x})",
            g.to_bits(),
            e.to_bits()
        );
    }
}

fn block(d: u16, m: Option<u16>, qs: &[u8]) -> Vec<u8> {
    let mut out = d.to_le_bytes().to_vec();
    if let Some(m) = m {
        out.extend_from_slice(&m.to_le_bytes());
    }
    out.extend_from_slice(qs);
    out
}

// Hand-made blocks: negative and extreme scales, extreme quants, signed zeros, subnormals.
fn hand_made_q8_0() -> Vec<u8> {
    let ramp: Vec<u8> = (0..32).map(|i: i32| (i * 8 - 128) as i8 as u8).collect();
    let extremes: Vec<u8> = [-128i8, 127, 0, -1, 1, -127]
        .iter()
        .cycle()
        .take(32)
        .map(|&q| q as u8)
        .collect();
    let mut data = Vec::new();
    data.extend(block(0xB800, None, &ramp)); // d = -0.5
    data.extend(block(0x7BFF, None, &extremes)); // d = 65504, the largest f16
    data.extend(block(0x0001, None, &extremes)); // d = 2^-24, the smallest subnormal
    data.extend(block(0x8000, None, &extremes)); // d = -0.0
    data.extend(block(0x3555, None, &ramp)); // d = 0.33325195
    data
}

fn hand_made_q4_0() -> Vec<u8> {
    let extremes: Vec<u8> = [0x00, 0xFF, 0x0F, 0xF0, 0x87, 0x78, 0x08, 0x80]
        .iter()
        .cycle()
        .take(16)
        .copied()
        .collect();
    let counting: Vec<u8> = (0..16).map(|i| (i as u8) | ((15 - i as u8) << 4)).collect();
    let mut data = Vec::new();
    data.extend(block(0xBC00, None, &extremes)); // d = -1
    data.extend(block(0x7BFF, None, &counting));
    data.extend(block(0x03FF, None, &counting)); // largest subnormal
    data.extend(block(0x8000, None, &extremes));
    data.extend(block(0x3555, None, &counting));
    data
}

fn hand_made_q4_1() -> Vec<u8> {
    let extremes: Vec<u8> = [0x00, 0xFF, 0x0F, 0xF0]
        .iter()
        .cycle()
        .take(16)
        .copied()
        .collect();
    let counting: Vec<u8> = (0..16).map(|i| (i as u8) | ((15 - i as u8) << 4)).collect();
    let mut data = Vec::new();
    data.extend(block(0xBC00, Some(0xC500), &extremes)); // d = -1, m = -5
    data.extend(block(0x3555, Some(0x2E66), &counting)); // d = 0.333, m = 0.1: sum rounds
    data.extend(block(0x7BFF, Some(0xFBFF), &counting)); // largest magnitudes
    data.extend(block(0x8000, Some(0x8000), &extremes)); // -0 * q + -0
    data.extend(block(0x0001, Some(0x3C00), &counting)); // tiny d next to m = 1
    data
}

fn random_blocks(rng: &mut Rng, n_blocks: usize, n_scales: usize, quant_bytes: usize) -> Vec<u8> {
    let mut data = Vec::new();
    for _ in 0..n_blocks {
        for _ in 0..n_scales {
            data.extend_from_slice(&rng.finite_f16().to_le_bytes());
        }
        data.extend(rng.bytes(quant_bytes));
    }
    data
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn u16_bytes(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Builds a file with every metadata value type, nested and empty arrays, and one tensor per
/// supported type plus one Q6_K tensor.
fn sample_builder(alignment: Option<u32>) -> GgufBuilder {
    let f32_values = [
        1.5,
        -0.0,
        f32::MAX,
        f32::MIN_POSITIVE,
        1e-45,
        f32::INFINITY,
        f32::NEG_INFINITY,
        3.25,
    ];
    let f16_values = [
        0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0xFC00, 0x8000,
    ];
    let bf16_values = [
        0x3F80, 0xC000, 0x0001, 0x7F7F, 0xFF80, 0x8000, 0x4049, 0x0080,
    ];
    let nested = MetaArray::Array(vec![
        MetaArray::U8(vec![1, 2]),
        MetaArray::String(vec!["x".to_string()]),
        MetaArray::Array(vec![MetaArray::Bool(vec![true])]),
        MetaArray::I32(vec![]),
    ]);

    let mut builder = GgufBuilder::new()
        .meta(
            "general.architecture",
            MetaValue::String("llama".to_string()),
        )
        .meta("test.u8", MetaValue::U8(255))
        .meta("test.i8", MetaValue::I8(-128))
        .meta("test.u16", MetaValue::U16(65535))
        .meta("test.i16", MetaValue::I16(-32768))
        .meta("test.u32", MetaValue::U32(u32::MAX))
        .meta("test.i32", MetaValue::I32(i32::MIN))
        .meta("test.f32", MetaValue::F32(-1.25))
        .meta("test.bool", MetaValue::Bool(true))
        .meta(
            "test.string",
            MetaValue::String("héllo, 世界 🦙".to_string()),
        )
        .meta("test.empty_string", MetaValue::String(String::new()))
        .meta("test.u64", MetaValue::U64(u64::MAX))
        .meta("test.i64", MetaValue::I64(i64::MIN))
        .meta("test.f64", MetaValue::F64(std::f64::consts::PI))
        .meta(
            "test.array.u8",
            MetaValue::Array(MetaArray::U8(vec![0, 1, 255])),
        )
        .meta(
            "test.array.i8",
            MetaValue::Array(MetaArray::I8(vec![-128, 0, 127])),
        )
        .meta(
            "test.array.u16",
            MetaValue::Array(MetaArray::U16(vec![0, 65535])),
        )
        .meta(
            "test.array.i16",
            MetaValue::Array(MetaArray::I16(vec![-32768, 32767])),
        )
        .meta(
            "test.array.u32",
            MetaValue::Array(MetaArray::U32(vec![0, u32::MAX])),
        )
        .meta(
            "test.array.i32",
            MetaValue::Array(MetaArray::I32(vec![i32::MIN, -1, 3])),
        )
        .meta(
            "test.array.f32",
            MetaValue::Array(MetaArray::F32(vec![0.5, -2.0])),
        )
        .meta(
            "test.array.bool",
            MetaValue::Array(MetaArray::Bool(vec![true, false, true])),
        )
        .meta(
            "test.array.string",
            MetaValue::Array(MetaArray::String(vec![
                "a".into(),
                String::new(),
                "ü".into(),
            ])),
        )
        .meta(
            "test.array.u64",
            MetaValue::Array(MetaArray::U64(vec![u64::MAX])),
        )
        .meta(
            "test.array.i64",
            MetaValue::Array(MetaArray::I64(vec![i64::MIN, i64::MAX])),
        )
        .meta(
            "test.array.f64",
            MetaValue::Array(MetaArray::F64(vec![1e300, -0.0])),
        )
        .meta(
            "test.array.empty",
            MetaValue::Array(MetaArray::String(vec![])),
        )
        .meta("test.array.nested", MetaValue::Array(nested))
        .tensor("f32", &[8], F32, f32_bytes(&f32_values))
        .tensor("f16", &[4, 2], F16, u16_bytes(&f16_values))
        .tensor("bf16", &[2, 2, 2], BF16, u16_bytes(&bf16_values))
        .tensor("q8_0", &[32, 5], Q8_0, hand_made_q8_0())
        .tensor("q4_0", &[160], Q4_0, hand_made_q4_0())
        .tensor("q4_1", &[32, 1, 5, 1], Q4_1, hand_made_q4_1())
        .tensor("q6_k", &[256], Q6_K, vec![0x11; 210]);
    builder.alignment = alignment;
    builder
}

#[test]
fn round_trip_every_value_type() {
    for alignment in [None, Some(32), Some(64), Some(1)] {
        let builder = sample_builder(alignment);
        let bytes = builder.build();
        let file = GgufFile::from_bytes(bytes.clone()).expect("sample file should parse");

        assert_eq!(file.version(), 3);
        assert_eq!(file.alignment(), alignment.map_or(32, u64::from));
        assert_eq!(
            file.data_offset() % file.alignment(),
            0,
            "data section start is aligned"
        );
        assert_eq!(
            file.metadata(),
            builder.expected_metadata().as_slice(),
            "metadata in file order"
        );
        for (key, value) in builder.expected_metadata() {
            assert_eq!(file.get(&key), Some(&value), "get({key})");
        }
        assert_eq!(file.get("test.absent"), None);

        let offsets = builder.offsets();
        assert_eq!(file.tensors().len(), builder.tensors.len());
        for ((info, spec), offset) in file.tensors().iter().zip(&builder.tensors).zip(offsets) {
            assert_eq!(info.name, spec.name);
            assert_eq!(info.dims, spec.dims, "{}: dims", spec.name);
            assert_eq!(info.ggml_type.id(), spec.type_id, "{}: type", spec.name);
            assert_eq!(info.offset, offset, "{}: offset", spec.name);
            assert_eq!(
                info.n_bytes,
                spec.data.len() as u64,
                "{}: n_bytes",
                spec.name
            );
            assert_eq!(
                file.tensor_data(info),
                spec.data.as_slice(),
                "{}: data",
                spec.name
            );
            assert_eq!(file.tensor(&spec.name), Some(info));
        }
        assert_eq!(file.tensor("absent"), None);
    }
}

#[test]
fn alignment_32_and_64_place_data() {
    for alignment in [32u32, 64] {
        let bytes = sample_builder(Some(alignment)).build();
        let file = GgufFile::from_bytes(bytes).unwrap();
        assert_eq!(file.alignment(), u64::from(alignment));
        assert_eq!(file.data_offset() % u64::from(alignment), 0);
        for t in file.tensors() {
            assert_eq!(
                t.offset % u64::from(alignment),
                0,
                "{} offset {}",
                t.name,
                t.offset
            );
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot memory-map files")]
fn open_reads_file_like_from_bytes() {
    let bytes = sample_builder(Some(64)).build();
    let mut tmp = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut tmp, &bytes).unwrap();

    let mapped = GgufFile::open(tmp.path()).unwrap();
    let owned = GgufFile::from_bytes(bytes).unwrap();
    assert_eq!(mapped.metadata(), owned.metadata());
    assert_eq!(mapped.tensors(), owned.tensors());
    for t in mapped.tensors() {
        assert_eq!(mapped.tensor_data(t), owned.tensor_data(t));
    }
}

#[test]
fn version_2_is_accepted() {
    let mut builder = sample_builder(None);
    builder.version = 2;
    let file = GgufFile::from_bytes(builder.build()).unwrap();
    assert_eq!(file.version(), 2);
}

#[test]
fn typed_getters_convert_and_fail() {
    let file = GgufFile::from_bytes(sample_builder(None).build()).unwrap();

    assert_eq!(file.get_u32("test.u8").unwrap(), 255);
    assert_eq!(file.get_u32("test.u16").unwrap(), 65535);
    assert_eq!(file.get_u32("test.u32").unwrap(), u32::MAX);
    assert_eq!(file.get_u64("test.u64").unwrap(), u64::MAX);
    assert_eq!(file.get_i64("test.i64").unwrap(), i64::MIN);
    assert_eq!(file.get_f32("test.f32").unwrap(), -1.25);
    assert_eq!(file.get_f64("test.f64").unwrap(), std::f64::consts::PI);
    assert_eq!(file.get_f64("test.f32").unwrap(), -1.25);
    assert!(file.get_bool("test.bool").unwrap());
    assert_eq!(file.get_str("test.string").unwrap(), "héllo, 世界 🦙");
    assert_eq!(
        file.get_str_array("test.array.string").unwrap(),
        ["a", "", "ü"]
    );
    assert_eq!(file.get_f32_array("test.array.f32").unwrap(), [0.5, -2.0]);
    assert_eq!(
        file.get_i64_array("test.array.i32").unwrap(),
        [i64::from(i32::MIN), -1, 3]
    );
    assert_eq!(
        file.get_array("test.array.u8").unwrap(),
        &MetaArray::U8(vec![0, 1, 255])
    );

    let negative = file.get_u32("test.i8").unwrap_err();
    assert!(
        matches!(negative, GgufError::ValueOutOfRange { ref key, .. } if key == "test.i8"),
        "{negative}"
    );
    assert!(negative.to_string().contains("-128"), "{negative}");
    let too_big = file.get_u32("test.u64").unwrap_err();
    assert!(
        matches!(too_big, GgufError::ValueOutOfRange { .. }),
        "{too_big}"
    );
    let u64_array = file.get_i64_array("test.array.u64").unwrap_err();
    assert!(
        matches!(u64_array, GgufError::ValueOutOfRange { .. }),
        "{u64_array}"
    );

    let wrong = file.get_u32("test.string").unwrap_err();
    assert!(
        matches!(wrong, GgufError::WrongType { ref key, .. } if key == "test.string"),
        "{wrong}"
    );
    assert!(wrong.to_string().contains("string"), "{wrong}");
    let wrong_array = file.get_str_array("test.array.u8").unwrap_err();
    assert!(
        wrong_array.to_string().contains("array<u8>"),
        "{wrong_array}"
    );
    assert!(matches!(
        file.get_f32("test.f64"),
        Err(GgufError::WrongType { .. })
    ));

    let missing = file.get_str("test.absent").unwrap_err();
    assert!(
        matches!(missing, GgufError::MissingKey { ref key } if key == "test.absent"),
        "{missing}"
    );
}

#[test]
fn dequantize_matches_reference() {
    let builder = sample_builder(None);
    let file = GgufFile::from_bytes(builder.build()).unwrap();
    let references: [(&str, Reference); 5] = [
        ("f16", reference_f16),
        ("bf16", reference_bf16),
        ("q8_0", reference_q8_0),
        ("q4_0", reference_q4_0),
        ("q4_1", reference_q4_1),
    ];
    for (name, reference) in references {
        let spec = builder.tensors.iter().find(|t| t.name == name).unwrap();
        let info = file.tensor(name).unwrap();
        let got = file.tensor_to_f32(info).unwrap();
        assert_eq!(
            got.len() as u64,
            info.n_elements(),
            "{name}: one value per element"
        );
        assert_same_bits(name, &got, &reference(&spec.data));
    }

    let f32_info = file.tensor("f32").unwrap();
    let raw = file.tensor_data(f32_info);
    let expected: Vec<f32> = raw
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_same_bits("f32", &file.tensor_to_f32(f32_info).unwrap(), &expected);
}

#[test]
fn dequantize_random_blocks_bit_exact() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let n_blocks = 512;
    let q8 = random_blocks(&mut rng, n_blocks, 1, 32);
    let q4_0 = random_blocks(&mut rng, n_blocks, 1, 16);
    let q4_1 = random_blocks(&mut rng, n_blocks, 2, 16);
    let f16: Vec<u8> = (0..4096)
        .flat_map(|_| rng.finite_f16().to_le_bytes())
        .collect();
    let bf16 = rng.bytes(8192);
    let rows = n_blocks as u64 * 32 / 64;

    let builder = GgufBuilder::new()
        .tensor("q8_0", &[64, rows], Q8_0, q8.clone())
        .tensor("q4_0", &[64, rows], Q4_0, q4_0.clone())
        .tensor("q4_1", &[64, rows], Q4_1, q4_1.clone())
        .tensor("f16", &[4096], F16, f16.clone())
        .tensor("bf16", &[4096], BF16, bf16.clone());
    let file = GgufFile::from_bytes(builder.build()).unwrap();

    let convert = |name: &str| file.tensor_to_f32(file.tensor(name).unwrap()).unwrap();
    assert_same_bits("q8_0", &convert("q8_0"), &reference_q8_0(&q8));
    assert_same_bits("q4_0", &convert("q4_0"), &reference_q4_0(&q4_0));
    assert_same_bits("q4_1", &convert("q4_1"), &reference_q4_1(&q4_1));
    assert_same_bits("f16", &convert("f16"), &reference_f16(&f16));
    // Random bf16 patterns include NaNs, whose payload the shift keeps; compare those by class.
    let got = convert("bf16");
    for (i, (g, e)) in got.iter().zip(reference_bf16(&bf16)).enumerate() {
        if e.is_nan() {
            assert!(g.is_nan(), "bf16 element {i}: {g} should be NaN");
        } else {
            assert_eq!(g.to_bits(), e.to_bits(), "bf16 element {i}");
        }
    }
}

#[test]
fn dequantize_nan_scale_gives_nan() {
    let data = block(0x7E00, None, &[0x33; 16]); // d = NaN
    let file =
        GgufFile::from_bytes(GgufBuilder::new().tensor("t", &[32], Q4_0, data).build()).unwrap();
    let values = file.tensor_to_f32(&file.tensors()[0]).unwrap();
    assert!(values.iter().all(|v| v.is_nan()), "{values:?}");
}

#[test]
fn unsupported_type_error_names_tensor_and_type() {
    let file = GgufFile::from_bytes(sample_builder(None).build()).unwrap();
    let info = file.tensor("q6_k").unwrap();
    assert_eq!(info.ggml_type, GgmlType::Q6_K);
    assert_eq!(file.tensor_data(info).len(), 210);

    let err = file.tensor_to_f32(info).unwrap_err();
    assert!(matches!(err, GgufError::UnsupportedDequant { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("q6_k"), "{message}");
    assert!(message.contains("Q6_K"), "{message}");
    assert!(
        message.contains("F32, F16, BF16, Q8_0, Q4_0 and Q4_1"),
        "{message}"
    );
}

#[test]
fn foreign_tensor_info_is_rejected() {
    let file = GgufFile::from_bytes(sample_builder(None).build()).unwrap();
    let mut info = file.tensor("q4_0").unwrap().clone();
    info.offset = u64::MAX - 4;
    assert!(file.tensor_data(&info).is_empty());
    assert!(matches!(
        file.tensor_to_f32(&info),
        Err(GgufError::ForeignTensor { .. })
    ));

    let mut wrong_size = file.tensor("q4_0").unwrap().clone();
    wrong_size.n_bytes += 18;
    assert!(matches!(
        file.tensor_to_f32(&wrong_size),
        Err(GgufError::ForeignTensor { .. })
    ));
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot memory-map files")]
fn smollm2_matches_readme() {
    let Some(path) = shared_file("models/SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();

    assert_eq!(file.version(), 3);
    assert_eq!(file.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(file.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(file.get_u32("llama.embedding_length").unwrap(), 576);
    assert_eq!(file.get_u32("llama.attention.head_count").unwrap(), 9);
    assert_eq!(file.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(file.get_u32("llama.vocab_size").unwrap(), 49152);
    assert_eq!(
        file.get_str_array("tokenizer.ggml.tokens").unwrap().len(),
        49152
    );

    let count = |ggml_type| {
        file.tensors()
            .iter()
            .filter(|t| t.ggml_type == ggml_type)
            .count()
    };
    assert_eq!(file.tensors().len(), 272);
    assert_eq!(count(GgmlType::Q4_1), 210);
    assert_eq!(count(GgmlType::F32), 61);
    assert_eq!(count(GgmlType::Q8_0), 1);

    // Tied embeddings: no output.weight, and token_embd is [hidden, vocab] in GGUF order.
    assert!(file.tensor("output.weight").is_none());
    let embedding = file.tensor("token_embd.weight").unwrap();
    assert_eq!(embedding.dims, [576, 49152]);
    assert_eq!(embedding.ggml_type, GgmlType::Q8_0);

    let checks: [(&str, GgmlType, Reference); 3] = [
        ("token_embd.weight", GgmlType::Q8_0, reference_q8_0),
        ("blk.0.ffn_down.weight", GgmlType::Q4_1, reference_q4_1),
        ("blk.29.attn_q.weight", GgmlType::Q4_1, reference_q4_1),
    ];
    for (name, ggml_type, reference) in checks {
        let info = file.tensor(name).unwrap();
        assert_eq!(info.ggml_type, ggml_type, "{name}");
        let values = file.tensor_to_f32(info).unwrap();
        assert!(
            values.iter().all(|v| v.is_finite()),
            "{name}: all values finite"
        );
        assert_same_bits(name, &values, &reference(file.tensor_data(info)));
    }

    let norm = file.tensor("blk.0.attn_norm.weight").unwrap();
    assert_eq!(norm.ggml_type, GgmlType::F32);
    let values = file.tensor_to_f32(norm).unwrap();
    assert_eq!(values.len(), 576);
    assert!(
        values.iter().all(|v| v.is_finite() && *v != 0.0),
        "norm weights finite and nonzero"
    );
}

// ---------------------------------------------------------------------------------------------
// Malformed files

fn header(version: u32, n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    put_u32(&mut out, version);
    put_u64(&mut out, n_tensors);
    put_u64(&mut out, n_kv);
    out
}

fn parse_err(bytes: Vec<u8>) -> GgufError {
    match GgufFile::from_bytes(bytes) {
        Ok(file) => panic!("expected an error, got {file:?}"),
        Err(err) => err,
    }
}

#[test]
fn wrong_magic_rejected() {
    for bytes in [
        b"GGML\x03\0\0\0".to_vec(),
        b"GG".to_vec(),
        Vec::new(),
        b"\0\0\0\0".to_vec(),
    ] {
        let err = parse_err(bytes.clone());
        assert!(
            matches!(err, GgufError::InvalidMagic { .. }),
            "{bytes:?}: {err}"
        );
    }
    let message = parse_err(b"GGML\x03\0\0\0".to_vec()).to_string();
    assert!(message.contains("47 47 55 46"), "{message}");
}

#[test]
fn versions_1_and_99_rejected() {
    for version in [0u32, 1, 4, 99] {
        let err = parse_err(header(version, 0, 0));
        assert!(
            matches!(err, GgufError::UnsupportedVersion { version: v } if v == version),
            "{err}"
        );
        assert!(
            err.to_string().contains(&format!("version {version}")),
            "{err}"
        );
    }
}

#[test]
fn big_endian_rejected() {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_be_bytes());
    bytes.extend_from_slice(&[0; 16]);
    assert!(matches!(parse_err(bytes), GgufError::BigEndian { .. }));
}

#[test]
fn every_truncation_rejected() {
    let bytes = sample_builder(Some(64)).build();
    assert!(GgufFile::from_bytes(bytes.clone()).is_ok());
    // Miri is about a thousand times slower: there every 17th length and the header bytes.
    let lengths = (0..bytes.len()).filter(|&len| !cfg!(miri) || len < 64 || len % 17 == 0);
    for len in lengths {
        let result = GgufFile::from_bytes(bytes[..len].to_vec());
        assert!(
            result.is_err(),
            "prefix of {len} of {} bytes parsed",
            bytes.len()
        );
    }
}

#[test]
fn truncation_error_names_field_and_offset() {
    let mut bytes = header(3, 0, 1);
    put_str(&mut bytes, "general.name");
    put_u32(&mut bytes, 8); // string
    put_u64(&mut bytes, 100);
    bytes.extend_from_slice(b"short");
    let err = parse_err(bytes);
    let GgufError::Truncated {
        field,
        offset,
        needed,
        available,
    } = err
    else {
        panic!("expected Truncated, got {err}");
    };
    assert!(field.contains("general.name"), "{field}");
    assert_eq!(offset, 56);
    assert_eq!(needed, 100);
    assert_eq!(available, 5);
}

#[test]
fn random_corruption_never_panics() {
    let original = sample_builder(Some(32)).build();
    let mut rng = Rng(42);
    let mut accepted = 0;
    let rounds = if cfg!(miri) { 500 } else { 20_000 };
    for _ in 0..rounds {
        let mut bytes = original.clone();
        for _ in 0..1 + rng.next_u64() % 4 {
            let at = (rng.next_u64() % bytes.len() as u64) as usize;
            bytes[at] = rng.next_u64() as u8;
        }
        if let Ok(file) = GgufFile::from_bytes(bytes) {
            accepted += 1;
            for t in file.tensors() {
                let _ = file.tensor_to_f32(t);
            }
        }
    }
    // Most single-byte changes land in tensor data or string text and stay valid.
    assert!(accepted > 0);
}

#[test]
fn huge_string_length_rejected() {
    for len in [u64::MAX, 1 << 40, 1_000] {
        let mut bytes = header(3, 0, 1);
        put_u64(&mut bytes, len);
        bytes.extend_from_slice(&[b'a'; 16]);
        let err = parse_err(bytes);
        assert!(err.to_string().contains(&len.to_string()), "{err}");
        let GgufError::Truncated { needed, offset, .. } = err else {
            panic!("expected Truncated, got {err}");
        };
        assert_eq!(needed, len);
        assert_eq!(offset, 32);
    }
}

#[test]
fn huge_array_count_rejected() {
    for (element_type, count) in [(0u32, u64::MAX), (8, 1 << 40), (9, 1 << 33), (12, 3)] {
        let mut bytes = header(3, 0, 1);
        put_str(&mut bytes, "big");
        put_u32(&mut bytes, 9);
        put_u32(&mut bytes, element_type);
        put_u64(&mut bytes, count);
        bytes.extend_from_slice(&[0; 16]);
        let err = parse_err(bytes);
        assert!(
            matches!(err, GgufError::CountTooLarge { count: c, .. } if c == count),
            "{err}"
        );
        assert!(err.to_string().contains("`big`"), "{err}");
    }
}

#[test]
fn huge_tensor_and_entry_counts_rejected() {
    let cases = [
        (header(3, u64::MAX, 0), "tensor count", 8),
        (header(3, 0, 1 << 60), "metadata entry count", 16),
    ];
    for (bytes, expected_field, expected_offset) in cases {
        let err = parse_err(bytes);
        let GgufError::CountTooLarge { field, offset, .. } = err else {
            panic!("expected CountTooLarge, got {err}");
        };
        assert_eq!(field, expected_field);
        assert_eq!(offset, expected_offset);
    }
}

#[test]
fn deep_array_nesting_rejected() {
    let nest = |depth: usize| {
        let mut array = MetaArray::U8(vec![7]);
        for _ in 1..depth {
            array = MetaArray::Array(vec![array]);
        }
        GgufBuilder::new()
            .meta("deep", MetaValue::Array(array))
            .build()
    };
    assert!(GgufFile::from_bytes(nest(tinyllm_convert::gguf::MAX_ARRAY_DEPTH)).is_ok());
    let err = parse_err(nest(tinyllm_convert::gguf::MAX_ARRAY_DEPTH + 1));
    assert!(
        matches!(err, GgufError::ArrayTooDeep { ref key, .. } if key == "deep"),
        "{err}"
    );
}

#[test]
fn invalid_values_rejected() {
    let mut bad_type = header(3, 0, 1);
    put_str(&mut bad_type, "k");
    put_u32(&mut bad_type, 13);
    put_u64(&mut bad_type, 0);
    let err = parse_err(bad_type);
    let GgufError::InvalidValueType { type_id, key, .. } = err else {
        panic!("expected InvalidValueType, got {err}");
    };
    assert_eq!(type_id, 13);
    assert_eq!(key, "k");

    let mut bad_bool = header(3, 0, 1);
    put_str(&mut bad_bool, "flag");
    put_u32(&mut bad_bool, 7);
    bad_bool.push(2);
    let err = parse_err(bad_bool);
    assert!(
        matches!(err, GgufError::InvalidBool { value: 2, .. }),
        "{err}"
    );

    let mut bad_utf8 = header(3, 0, 1);
    put_u64(&mut bad_utf8, 2);
    bad_utf8.extend_from_slice(&[0xC3, 0x28]);
    put_u32(&mut bad_utf8, 0);
    bad_utf8.push(0);
    let err = parse_err(bad_utf8);
    assert!(
        matches!(err, GgufError::InvalidUtf8 { offset: 32, .. }),
        "{err}"
    );

    let duplicate = GgufBuilder::new()
        .meta("k", MetaValue::U8(1))
        .meta("k", MetaValue::U8(2))
        .build();
    assert!(matches!(parse_err(duplicate), GgufError::DuplicateKey { ref key, .. } if key == "k"));
}

#[test]
fn alignment_0_and_3_rejected() {
    for alignment in [0u32, 3, 48] {
        let mut builder = sample_builder(None);
        builder.alignment = Some(alignment);
        let err = parse_err(builder.build());
        assert!(
            matches!(err, GgufError::InvalidAlignment { value } if value == u64::from(alignment)),
            "{err}"
        );
    }
    let as_string = GgufBuilder::new()
        .meta("general.alignment", MetaValue::String("32".to_string()))
        .build();
    let err = parse_err(as_string);
    assert!(
        matches!(err, GgufError::WrongType { ref key, .. } if key == "general.alignment"),
        "{err}"
    );
}

#[test]
fn shape_overflow_rejected() {
    for dims in [
        vec![1u64 << 32, 1 << 32],
        vec![u64::MAX],
        vec![1 << 62, 2],
        vec![32, 1 << 62],
    ] {
        let bytes = GgufBuilder::new()
            .tensor("huge", &dims, F32, vec![0; 32])
            .build();
        let err = parse_err(bytes);
        assert!(
            matches!(err, GgufError::ShapeOverflow { ref tensor, .. } if tensor == "huge"),
            "{dims:?}: {err}"
        );
    }
    // 2^62 F32 elements fit i64, but their 2^64 bytes do not fit u64.
    let bytes = GgufBuilder::new()
        .tensor("bytes", &[1 << 31, 1 << 31], F32, vec![0; 32])
        .build();
    let err = parse_err(bytes);
    assert!(matches!(err, GgufError::ShapeOverflow { .. }), "{err}");
}

#[test]
fn bad_tensor_entries_rejected() {
    let mut builder = GgufBuilder::new().tensor("t5", &[1, 1, 1, 1, 1], F32, vec![0; 4]);
    let err = parse_err(builder.build());
    assert!(
        matches!(err, GgufError::TooManyDims { n_dims: 5, .. }),
        "{err}"
    );

    for type_id in [4u32, 31, 1000] {
        builder = GgufBuilder::new().tensor("odd", &[32], type_id, vec![0; 32]);
        let err = parse_err(builder.build());
        let GgufError::UnknownTensorType {
            type_id: found,
            tensor,
        } = err
        else {
            panic!("expected UnknownTensorType, got {err}");
        };
        assert_eq!(found, type_id);
        assert_eq!(tensor, "odd");
    }

    builder = GgufBuilder::new().tensor("half_block", &[16, 2], Q4_0, vec![0; 18]);
    let err = parse_err(builder.build());
    let GgufError::PartialBlock {
        row_len,
        block_size,
        ..
    } = err
    else {
        panic!("expected PartialBlock, got {err}");
    };
    assert_eq!(row_len, 16);
    assert_eq!(block_size, 32);

    builder = GgufBuilder::new()
        .tensor("same", &[8], F32, vec![0; 32])
        .tensor("same", &[8], F32, vec![0; 32]);
    assert!(matches!(
        parse_err(builder.build()),
        GgufError::DuplicateTensor { .. }
    ));
}

#[test]
fn tensor_offset_beyond_file_rejected() {
    let mut builder = GgufBuilder::new()
        .tensor("a", &[8], F32, vec![0; 32])
        .tensor("b", &[8], F32, vec![0; 32]);
    builder.offset_overrides = vec![(1, 1 << 20)];
    let err = parse_err(builder.build());
    let GgufError::TensorOutOfBounds { tensor, offset, .. } = err else {
        panic!("expected TensorOutOfBounds, got {err}");
    };
    assert_eq!(tensor, "b");
    assert_eq!(offset, 1 << 20);

    builder.offset_overrides = vec![(1, u64::MAX - 31)];
    let err = parse_err(builder.build());
    assert!(
        matches!(err, GgufError::TensorOutOfBounds { end: u64::MAX, .. }),
        "{err}"
    );
}

#[test]
fn misaligned_offset_rejected() {
    let mut builder = GgufBuilder::new().tensor("a", &[8], F32, vec![0; 32]);
    builder.offset_overrides = vec![(0, 4)];
    let err = parse_err(builder.build());
    let GgufError::MisalignedOffset {
        offset, alignment, ..
    } = err
    else {
        panic!("expected MisalignedOffset, got {err}");
    };
    assert_eq!(offset, 4);
    assert_eq!(alignment, 32);
}

#[test]
fn overlapping_tensors_rejected() {
    let mut builder = GgufBuilder::new()
        .tensor("a", &[16], F32, vec![0; 64])
        .tensor("b", &[8], F32, vec![0; 32]);
    builder.offset_overrides = vec![(1, 32)];
    let err = parse_err(builder.build());
    let GgufError::OverlappingTensors {
        first,
        second,
        offset,
    } = err
    else {
        panic!("expected OverlappingTensors, got {err}");
    };
    assert_eq!(first, "a");
    assert_eq!(second, "b");
    assert_eq!(offset, 32);
}

#[test]
fn open_reports_io_errors() {
    let missing = std::path::Path::new("/nonexistent/model.gguf");
    let err = GgufFile::open(missing).unwrap_err();
    assert!(matches!(err, GgufError::Io { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/model.gguf"), "{err}");

    let empty = tempfile::NamedTempFile::new().unwrap();
    assert!(matches!(
        GgufFile::open(empty.path()),
        Err(GgufError::InvalidMagic { .. })
    ));
}
