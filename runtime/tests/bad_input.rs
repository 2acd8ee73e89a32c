//! Corrupt and inconsistent `.tllm` files: each is rejected with a typed error naming the
//! field and value, never a panic.

mod common;

use common::{fix_checksum, tiny_metadata, tiny_model, Aligned};
use tinyllm::format::table::parse_table;
use tinyllm::format::{Architecture, Header, TensorEntry};
use tinyllm::{ErrorKind, Model, OpenOptions, Session};

fn open(bytes: &[u8]) -> Result<(), ErrorKind> {
    let aligned = Aligned::new(bytes);
    Model::from_bytes(aligned.bytes()).map(|_| ()).map_err(|e| e.kind().clone())
}

/// Rewrites the tensor table through `edit` (fixed-size fields only), then fixes the checksum.
fn edit_table(bytes: &mut Vec<u8>, edit: impl FnOnce(&mut Vec<TensorEntry>)) {
    let header = Header::parse(bytes).unwrap();
    let table = &bytes[header.tensor_table.offset as usize..(header.tensor_table.offset + header.tensor_table.len) as usize];
    let mut entries = parse_table(table, header.tensor_count, header.data.offset, header.data.len).unwrap();
    edit(&mut entries);
    let mut encoded = Vec::new();
    for entry in &entries {
        entry.encode(&mut encoded);
    }
    assert_eq!(encoded.len() as u64, header.tensor_table.len, "the edit kept the table size");
    let start = header.tensor_table.offset as usize;
    bytes[start..start + encoded.len()].copy_from_slice(&encoded);
    fix_checksum(bytes);
}

/// Replaces `from` with `to` (same length) in the metadata JSON, then fixes the checksum.
fn edit_metadata(bytes: &mut [u8], from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let header = Header::parse(bytes).unwrap();
    let start = header.metadata.offset as usize;
    let end = start + header.metadata.len as usize;
    let json = std::str::from_utf8(&bytes[start..end]).unwrap();
    let at = json.find(from).unwrap_or_else(|| panic!("{from} is in the metadata")) + start;
    bytes[at..at + from.len()].copy_from_slice(to.as_bytes());
    fix_checksum(bytes);
}

fn tensor_position(bytes: &[u8], name: &str) -> (usize, usize) {
    let aligned = Aligned::new(bytes);
    let model = Model::from_bytes(aligned.bytes()).unwrap();
    let entry = model.tensors().iter().find(|t| t.name == name).unwrap();
    ((model.header().data.offset + entry.offset) as usize, entry.length as usize)
}

#[test]
fn valid_file_opens() {
    let bytes = tiny_model(Architecture::Llama);
    assert_eq!(open(&bytes), Ok(()));
}

#[test]
fn wrong_magic() {
    let mut bytes = tiny_model(Architecture::Llama);
    bytes[..4].copy_from_slice(b"GGUF");
    assert_eq!(open(&bytes), Err(ErrorKind::BadMagic { found: *b"GGUF" }));
}

#[test]
fn newer_version() {
    let mut bytes = tiny_model(Architecture::Llama);
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(open(&bytes), Err(ErrorKind::UnsupportedVersion { found: 2, supported: 1 }));
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = tiny_model(Architecture::Qwen2);
    // Miri runs about a thousand times slower: there every 61st length (a prime, so the cuts
    // land at every offset within the 64-byte alignment) plus the header bytes.
    let step = if cfg!(miri) { 61 } else { 1 };
    let lengths = (0..bytes.len()).step_by(step).chain(if cfg!(miri) { 0..tinyllm::format::HEADER_SIZE } else { 0..0 });
    for len in lengths {
        let result = open(&bytes[..len]);
        assert!(result.is_err(), "a file cut to {len} of {} bytes opened", bytes.len());
    }
}

#[test]
fn truncated_data_names_the_section() {
    let bytes = tiny_model(Architecture::Llama);
    let cut = &bytes[..bytes.len() - 10];
    match open(cut) {
        Err(ErrorKind::OutOfBounds { what, .. }) => assert_eq!(what, "tensor data section"),
        other => panic!("expected OutOfBounds, got {other:?}"),
    }
}

#[test]
fn tensor_offset_outside_file() {
    let mut bytes = tiny_model(Architecture::Llama);
    edit_table(&mut bytes, |entries| entries[3].offset = 1 << 40);
    match open(&bytes) {
        Err(ErrorKind::OutOfBounds { what, offset, .. }) => {
            assert!(what.contains("layers.0.attn_k"), "{what}");
            assert_eq!(offset, 1 << 40);
        }
        other => panic!("expected OutOfBounds, got {other:?}"),
    }
}

#[test]
fn tensor_length_disagrees_with_shape() {
    let mut bytes = tiny_model(Architecture::Llama);
    edit_table(&mut bytes, |entries| entries[0].length = u64::MAX);
    match open(&bytes) {
        Err(ErrorKind::InvalidValue { field, value, .. }) => {
            assert_eq!(field, "tensor token_embd: length");
            assert_eq!(value, u64::MAX.to_string());
        }
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

#[test]
fn shape_product_overflow() {
    let mut bytes = tiny_model(Architecture::Llama);
    edit_table(&mut bytes, |entries| entries[1].shape = vec![u64::MAX]);
    match open(&bytes) {
        Err(ErrorKind::InvalidValue { expected, .. }) => assert!(expected.contains("fits in 64 bits"), "{expected}"),
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

#[test]
fn misaligned_tensor() {
    let mut bytes = tiny_model(Architecture::Llama);
    edit_table(&mut bytes, |entries| entries[1].offset += 4);
    match open(&bytes) {
        Err(ErrorKind::Misaligned { tensor, alignment, .. }) => {
            assert_eq!(tensor, "layers.0.attn_norm");
            assert_eq!(alignment, 64);
        }
        other => panic!("expected Misaligned, got {other:?}"),
    }
}

#[test]
fn overlapping_tensors() {
    let mut bytes = tiny_model(Architecture::Llama);
    edit_table(&mut bytes, |entries| {
        let first = entries[2].offset;
        entries[4].offset = first;
    });
    match open(&bytes) {
        Err(ErrorKind::OutOfBounds { what, .. }) => assert!(what.contains("overlaps"), "{what}"),
        other => panic!("expected OutOfBounds, got {other:?}"),
    }
}

#[test]
fn shape_disagrees_with_layer_dims() {
    let mut bytes = tiny_model(Architecture::Llama);
    edit_metadata(&mut bytes, "\"ffn_dim\": 24", "\"ffn_dim\": 48");
    match open(&bytes) {
        Err(ErrorKind::ShapeMismatch { tensor, found, expected }) => {
            assert_eq!(tensor, "layers.0.ffn_gate");
            assert_eq!(found, vec![24, 16]);
            assert_eq!(expected, vec![48, 16]);
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
}

#[test]
fn missing_tensor() {
    let mut bytes = tiny_model(Architecture::Llama);
    edit_table(&mut bytes, |entries| {
        let entry = entries.iter_mut().find(|e| e.name == "layers.1.ffn_up").unwrap();
        entry.name = "layers.1.ffn_xx".into();
    });
    assert_eq!(open(&bytes), Err(ErrorKind::MissingTensor { name: "layers.1.ffn_up".into() }));
}

#[test]
fn missing_qwen2_bias() {
    let mut bytes = tiny_model(Architecture::Qwen2);
    edit_table(&mut bytes, |entries| {
        let entry = entries.iter_mut().find(|e| e.name == "layers.0.attn_v_bias").unwrap();
        entry.name = "layers.0.attn_v_bixx".into();
    });
    assert_eq!(open(&bytes), Err(ErrorKind::MissingTensor { name: "layers.0.attn_v_bias".into() }));
}

#[test]
fn metadata_checksum_mismatch() {
    let mut bytes = tiny_model(Architecture::Llama);
    let header = Header::parse(&bytes).unwrap();
    bytes[header.metadata.offset as usize + 5] ^= 0x01;
    match open(&bytes) {
        Err(ErrorKind::ChecksumMismatch { what, stored, computed }) => {
            assert_eq!(what, "metadata");
            assert_ne!(stored, computed);
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
}

#[test]
fn tensor_checksum_mismatch_found_by_verify() {
    let mut bytes = tiny_model(Architecture::Llama);
    let (start, _) = tensor_position(&bytes, "layers.1.ffn_down");
    bytes[start + 3] ^= 0x40;
    // A plain open does not read tensor data, so it succeeds.
    assert_eq!(open(&bytes), Ok(()));
    let aligned = Aligned::new(&bytes);
    let result = Model::from_bytes_with(aligned.bytes(), OpenOptions { verify_tensors: true });
    match result.map(|_| ()).map_err(|e| e.kind().clone()) {
        Err(ErrorKind::ChecksumMismatch { what, .. }) => assert_eq!(what, "tensor layers.1.ffn_down"),
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
}

#[test]
fn unknown_architecture() {
    let mut bytes = tiny_model(Architecture::Llama);
    edit_metadata(&mut bytes, "\"llama\"", "\"gpt99\"");
    assert_eq!(open(&bytes), Err(ErrorKind::UnknownArchitecture { name: "gpt99".into() }));
}

#[test]
fn heads_not_divisible_by_kv_heads() {
    let mut bytes = tiny_model(Architecture::Llama);
    edit_metadata(&mut bytes, "\"n_kv_heads\": 2", "\"n_kv_heads\": 3");
    match open(&bytes) {
        Err(ErrorKind::InvalidValue { field, value, .. }) => {
            assert_eq!(field, "layers[0].n_kv_heads");
            assert_eq!(value, "3");
        }
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

#[test]
fn metadata_not_json() {
    let mut bytes = tiny_model(Architecture::Llama);
    edit_metadata(&mut bytes, "{", "[");
    assert!(matches!(open(&bytes), Err(ErrorKind::InvalidMetadata { .. })));
}

#[test]
fn huge_tensor_count() {
    let mut bytes = tiny_model(Architecture::Llama);
    bytes[80..84].copy_from_slice(&u32::MAX.to_le_bytes());
    fix_checksum(&mut bytes);
    match open(&bytes) {
        Err(ErrorKind::InvalidValue { field, .. }) => assert_eq!(field, "header.tensor_count"),
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

#[test]
fn section_beyond_file() {
    let mut bytes = tiny_model(Architecture::Llama);
    bytes[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    match open(&bytes) {
        Err(ErrorKind::OutOfBounds { what, length, .. }) => {
            assert_eq!(what, "metadata section");
            assert_eq!(length, u64::MAX);
        }
        other => panic!("expected OutOfBounds, got {other:?}"),
    }
}

#[test]
fn misaligned_buffer() {
    let bytes = tiny_model(Architecture::Llama);
    let aligned = Aligned::new(&[&[0u8][..], &bytes].concat());
    let result = Model::from_bytes(&aligned.bytes()[1..]);
    assert!(matches!(result.map(|_| ()).map_err(|e| e.kind().clone()), Err(ErrorKind::Misaligned { .. })));
}

#[test]
fn prompt_longer_than_context() {
    let bytes = tiny_model(Architecture::Llama);
    let aligned = Aligned::new(&bytes);
    let model = Model::from_bytes(aligned.bytes()).unwrap();
    let mut session = Session::new(&model, Some(8));
    let prompt = [3u32; 9];
    let error = session.eval(&prompt).unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::ContextFull { used: 0, requested: 9, context: 8 });
    // The failed call left the session unchanged, so a prompt that fits still runs.
    assert_eq!(session.position(), 0);
    session.eval(&prompt[..8]).unwrap();
    assert_eq!(session.position(), 8);
    assert!(session.eval(&[1]).is_err());
}

#[test]
fn context_capped_by_model() {
    let bytes = tiny_model(Architecture::Llama);
    let aligned = Aligned::new(&bytes);
    let model = Model::from_bytes(aligned.bytes()).unwrap();
    assert_eq!(tiny_metadata(Architecture::Llama).max_context, 64);
    assert_eq!(Session::new(&model, Some(1_000_000)).context(), 64);
    assert_eq!(Session::new(&model, None).context(), 64);
}

#[test]
fn token_outside_vocabulary() {
    let bytes = tiny_model(Architecture::Llama);
    let aligned = Aligned::new(&bytes);
    let model = Model::from_bytes(aligned.bytes()).unwrap();
    let mut session = Session::new(&model, None);
    let error = session.eval(&[1, 37]).unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidToken { token: 37, vocab_size: 37 });
}

#[test]
#[cfg_attr(miri, ignore = "Miri cannot memory-map files")]
fn open_error_names_the_file() {
    let mut bytes = tiny_model(Architecture::Llama);
    bytes[4..8].copy_from_slice(&7u32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.tllm");
    std::fs::write(&path, &bytes).unwrap();
    let error = Model::open(&path).unwrap_err();
    assert_eq!(error.path(), Some(path.display().to_string().as_str()));
    let message = error.to_string();
    assert!(message.contains("broken.tllm"), "{message}");
    assert!(message.contains("format version 7"), "{message}");
}

#[test]
fn missing_file() {
    let error = Model::open("/nonexistent/model.tllm").unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::Io { .. }));
    assert!(error.to_string().contains("/nonexistent/model.tllm"));
}

#[cfg(not(miri))]
#[test]
fn folder_is_not_a_model() {
    let folder = tempfile::tempdir().unwrap();
    let message = tinyllm::Model::open(folder.path()).expect_err("a folder is not a model").to_string();
    assert!(message.contains("it is a folder"), "the error says what the path is: {message}");
    assert!(message.contains("tinyllm-convert"), "the error gives the fix: {message}");
}
