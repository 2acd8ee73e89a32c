//! Quantized weights: GGUF blocks transcode without loss, round-to-nearest stays within each
//! format's error bound, and the quantized SmolLM2 keeps its greedy answer.

use tinyllm::quant::{dequantize_row, interleave_rows, quantize_matrix, QuantFormat, QuantType, INTERLEAVES};
use tinyllm::tensor::TensorData;
use tinyllm::{ChatMessage, Model, Tokenizer};
use tinyllm_convert::gguf::{dequant, GgmlType, GgufFile};
use tinyllm_convert::recipe::{Preset, Recipe};
use tinyllm_convert::{convert, ConvertOptions};
use tinyllm_tests::{fixtures_dir, greedy, ids, read_json, shared_dir};

fn random(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    random(seed, n).iter().map(|v| ((v + 1.0) * 127.9) as u8).collect()
}

/// Dequantizes every row of a quantized matrix.
fn dequantize_matrix(qtype: QuantType, data: &[u8], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        dequantize_row(qtype, data, rows, cols, r, &mut out[r * cols..(r + 1) * cols]);
    }
    out
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn gguf_blocks_dequantize_identically() {
    // Random GGUF blocks (any bit pattern is a valid block, except f16 scales that are NaN or
    // infinite, which are compared by bits as well).
    let (rows, cols) = (7, 96);
    for (ggml_type, format) in [(GgmlType::Q8_0, QuantFormat::Q8_0), (GgmlType::Q4_0, QuantFormat::Q4_0), (GgmlType::Q4_1, QuantFormat::Q4_1)] {
        let blocks = format.blocks_per_row(cols as u64) as usize;
        let plain = random_bytes(format.code() as u64, rows * blocks * format.block_bytes());
        let expected = dequant::dequantize("t", ggml_type, &plain).unwrap();
        for interleave in INTERLEAVES {
            let data = interleave_rows(&plain, rows, blocks, format.block_bytes(), interleave as usize);
            let actual = dequantize_matrix(QuantType { format, interleave }, &data, rows, cols);
            assert!(same_bits(&actual, &expected), "{format:?} interleave {interleave}: values differ from GGUF's");
        }
    }
}

#[test]
fn rounding_error_within_format_bounds() {
    let (rows, cols) = (9, 200);
    let values = random(77, rows * cols);
    for format in QuantFormat::ALL {
        let qtype = QuantType { format, interleave: 4 };
        let data = quantize_matrix(&values, rows, cols, qtype);
        let restored = dequantize_matrix(qtype, &data, rows, cols);
        let group = format.group();
        for r in 0..rows {
            for start in (0..cols).step_by(group) {
                let end = (start + group).min(cols);
                let x = &values[r * cols + start..r * cols + end];
                let y = &restored[r * cols + start..r * cols + end];
                let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let (min, max) = x.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                // Half a step, where the step is d; the f16 rounding of d adds at most 2^-11
                // of each value. Q4_0 keeps one more level below zero than above, so a value
                // of the opposite sign to the extreme can be clamped by a whole step.
                let bound = match format {
                    QuantFormat::Q8_0 => amax / 127.0 / 2.0,
                    QuantFormat::Q4_0 | QuantFormat::Q4_0G64 | QuantFormat::Q4_0G128 => amax / 8.0,
                    QuantFormat::Q4_1 => (max - min) / 15.0 / 2.0,
                } + amax * 2f32.powi(-10);
                for (a, b) in x.iter().zip(y) {
                    assert!((a - b).abs() <= bound, "{format:?} row {r} group at {start}: {a} became {b}, bound {bound}");
                }
            }
        }
    }
}

fn smollm2(test: &str) -> Option<std::path::PathBuf> {
    Some(shared_dir(test)?.join("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
}

#[test]
fn source_preset_keeps_gguf_blocks() {
    let Some(gguf_path) = smollm2("lossless transcoding") else { return };
    let gguf = GgufFile::open(&gguf_path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for interleave in INTERLEAVES {
        let path = dir.path().join(format!("source-r{interleave}.tllm"));
        let recipe = Recipe { preset: Preset::Source, interleave, ..Recipe::default() };
        convert(&gguf_path, &path, &ConvertOptions { recipe }).unwrap();
        let model = Model::open(&path).unwrap();
        let mut checked = 0;
        for info in gguf.tensors() {
            if !matches!(info.ggml_type, GgmlType::Q8_0 | GgmlType::Q4_1) {
                continue;
            }
            let name = info.name.strip_suffix(".weight").unwrap().replace("blk.", "layers.");
            let entry = model.tensors().iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name} is in the .tllm file"));
            let (rows, cols) = (entry.shape[0] as usize, entry.shape[1] as usize);
            let Some(TensorData::Quant { qtype, data }) = model.tensor(&name) else { panic!("{name} stays quantized") };
            let expected = gguf.tensor_to_f32(info).unwrap();
            assert!(same_bits(&dequantize_matrix(qtype, data, rows, cols), &expected), "{name} ({qtype}) differs from the GGUF values");
            checked += 1;
        }
        assert_eq!(checked, 211, "210 Q4_1 tensors and the Q8_0 embedding");
    }
}

/// The greedy answer (up to EOS) of a model converted from SmolLM2 with `preset`.
fn france_answer(preset: Preset) -> Option<(String, String)> {
    let gguf = smollm2("quantized greedy answer")?;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.tllm");
    convert(&gguf, &path, &ConvertOptions { recipe: Recipe { preset, ..Recipe::default() } }).unwrap();
    let model = Model::open(&path).unwrap();
    let tokenizer = Tokenizer::from_model(&model).unwrap();
    let chat = read_json(&fixtures_dir().join("smollm2/reference.json"))["chat"].clone();
    let prompt = tokenizer.encode(&tokenizer.apply_chat_template(&[ChatMessage::new("user", chat["question"].as_str().unwrap())], true).unwrap(), false).unwrap();
    let expected_tokens = ids(&chat["new_tokens"]);
    let eos = chat["eos_token_id"].as_u64().unwrap() as u32;
    let expected_len = expected_tokens.iter().position(|&t| t == eos).unwrap();
    let tokens = greedy(&model, &prompt, expected_len + 1);
    let answer_len = tokens.iter().position(|&t| t == eos).unwrap_or(tokens.len());
    Some((tokenizer.decode(&tokens[..answer_len], true).unwrap(), tokenizer.decode(&expected_tokens[..expected_len], true).unwrap()))
}

#[test]
fn q8_keeps_greedy_answer() {
    let Some((answer, expected)) = france_answer(Preset::Uniform(QuantFormat::Q8_0)) else { return };
    assert_eq!(answer, expected);
}

#[test]
fn default_mix_keeps_greedy_answer() {
    let Some((answer, expected)) = france_answer(Preset::Mix) else { return };
    assert_eq!(answer, expected);
}
