//! [`Model`]: a `.tllm` file opened, validated and viewed in place.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};

use alloc::vec::Vec;

#[cfg(feature = "std")]
use crate::error::Error;
use crate::error::{ErrorKind, Result};
use crate::format::header::{metadata_checksum, Header};
use crate::format::table::parse_table;
use crate::format::{crc32, DType, Metadata, TensorEntry};
use crate::tensor::{Matrix, TensorData};

/// The bytes of an open model: a read-only memory map of the file, or a caller's buffer.
enum Storage<'a> {
    Borrowed(&'a [u8]),
    #[cfg(feature = "std")]
    Mapped(memmap2::Mmap),
}

impl Storage<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Borrowed(bytes) => bytes,
            #[cfg(feature = "std")]
            Storage::Mapped(map) => map,
        }
    }
}

/// Options for opening a model.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Check the CRC-32 of every tensor at open. This reads the whole file once, so it is off
    /// by default; `tinyllm inspect --verify` does the same check on demand.
    pub verify_tensors: bool,
}

/// Indices into the tensor table of the weights of one decoder layer.
#[derive(Debug, Clone, Default)]
struct LayerTensors {
    attn_norm: usize,
    attn_q: usize,
    attn_k: usize,
    attn_v: usize,
    attn_q_bias: Option<usize>,
    attn_k_bias: Option<usize>,
    attn_v_bias: Option<usize>,
    attn_q_norm: Option<usize>,
    attn_k_norm: Option<usize>,
    attn_output: usize,
    ffn_norm: usize,
    ffn_gate: usize,
    ffn_up: usize,
    ffn_down: usize,
}

/// The weights of one decoder layer, viewed in place.
#[derive(Debug, Clone, Copy)]
pub struct LayerWeights<'a> {
    /// RMSNorm weight before attention, `[hidden]`.
    pub attn_norm: TensorData<'a>,
    /// Query projection, `[n_heads * head_dim, hidden]`.
    pub attn_q: Matrix<'a>,
    /// Key projection, `[n_kv_heads * head_dim, hidden]`.
    pub attn_k: Matrix<'a>,
    /// Value projection, `[n_kv_heads * head_dim, hidden]`.
    pub attn_v: Matrix<'a>,
    /// Query bias, `[n_heads * head_dim]` (Qwen2).
    pub attn_q_bias: Option<TensorData<'a>>,
    /// Key bias, `[n_kv_heads * head_dim]` (Qwen2).
    pub attn_k_bias: Option<TensorData<'a>>,
    /// Value bias, `[n_kv_heads * head_dim]` (Qwen2).
    pub attn_v_bias: Option<TensorData<'a>>,
    /// RMSNorm weight applied to each query head, `[head_dim]` (Qwen3).
    pub attn_q_norm: Option<TensorData<'a>>,
    /// RMSNorm weight applied to each key head, `[head_dim]` (Qwen3).
    pub attn_k_norm: Option<TensorData<'a>>,
    /// Attention output projection, `[hidden, n_heads * head_dim]`.
    pub attn_output: Matrix<'a>,
    /// RMSNorm weight before the feed-forward block, `[hidden]`.
    pub ffn_norm: TensorData<'a>,
    /// Gate projection, `[ffn_dim, hidden]`.
    pub ffn_gate: Matrix<'a>,
    /// Up projection, `[ffn_dim, hidden]`.
    pub ffn_up: Matrix<'a>,
    /// Down projection, `[hidden, ffn_dim]`.
    pub ffn_down: Matrix<'a>,
}

/// An open `.tllm` model: header, metadata, tokenizer bytes and typed views of every tensor.
///
/// Opening checks the header, the metadata checksum, every offset, length, alignment and
/// shape, but does not read the tensor data, so it costs the same for any model size.
pub struct Model<'a> {
    storage: Storage<'a>,
    header: Header,
    metadata: Metadata,
    tensors: Vec<TensorEntry>,
    by_name: BTreeMap<String, usize>,
    token_embd: usize,
    output_norm: usize,
    output: usize,
    layers: Vec<LayerTensors>,
}

impl core::fmt::Debug for Model<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Model")
            .field("architecture", &self.metadata.architecture)
            .field("layers", &self.metadata.layers.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

#[cfg(feature = "std")]
impl Model<'static> {
    /// Maps the file at `path` read-only and opens it with default options.
    ///
    /// The file must not be truncated or rewritten in place while the model is open: the
    /// mapping would then change under the runtime. tinyllm's own tools replace files by
    /// renaming a new one over them, which leaves an existing mapping intact.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Model<'static>> {
        Self::open_with(path, OpenOptions::default())
    }

    /// Maps the file at `path` read-only and opens it with `options`.
    pub fn open_with(path: impl AsRef<std::path::Path>, options: OpenOptions) -> Result<Model<'static>> {
        let path = path.as_ref();
        let display_path = path.display().to_string();
        let io_error = |error: std::io::Error| Error::new(ErrorKind::Io { message: format!("cannot open: {error}") }).with_path(display_path.clone());
        if path.is_dir() {
            return Err(Error::new(ErrorKind::Io {
                message: "cannot open: it is a folder, not a .tllm file; convert a model folder with tinyllm-convert".into(),
            })
            .with_path(display_path));
        }
        let file = std::fs::File::open(path).map_err(io_error)?;
        // SAFETY: the map is read-only and private to this process. Memory safety relies on
        // the file not being truncated or modified while mapped, and `open` documents that as
        // the caller's obligation. tinyllm's own tools replace files by rename, never in place.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_error)?;
        Model::from_storage(Storage::Mapped(map), options).map_err(|error| error.with_path(display_path))
    }
}

impl<'a> Model<'a> {
    /// Opens a model held in memory, for example in flash on a microcontroller.
    ///
    /// Each tensor must be aligned for its element type in memory. A buffer aligned to
    /// 64 bytes always satisfies this, because the file aligns tensors to 64 bytes.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Model<'a>> {
        Self::from_bytes_with(bytes, OpenOptions::default())
    }

    /// Opens a model held in memory with `options`.
    pub fn from_bytes_with(bytes: &'a [u8], options: OpenOptions) -> Result<Model<'a>> {
        Model::from_storage(Storage::Borrowed(bytes), options)
    }

    fn from_storage(storage: Storage<'a>, options: OpenOptions) -> Result<Model<'a>> {
        let bytes = storage.bytes();
        let header = Header::parse(bytes)?;
        let computed = metadata_checksum(bytes, &header);
        if computed != header.metadata_checksum {
            return Err(ErrorKind::ChecksumMismatch { what: "metadata".to_string(), stored: header.metadata_checksum, computed }.into());
        }
        let metadata = Metadata::parse(section(bytes, header.metadata))?;
        let tensors = parse_table(section(bytes, header.tensor_table), header.tensor_count, header.data.offset, header.data.len)?;
        check_memory_alignment(bytes, &header, &tensors)?;
        check_no_overlap(&tensors)?;

        let mut by_name = BTreeMap::new();
        for (i, entry) in tensors.iter().enumerate() {
            if by_name.insert(entry.name.clone(), i).is_some() {
                return Err(ErrorKind::InvalidValue {
                    field: format!("tensor {}", entry.name),
                    value: "a second entry".to_string(),
                    expected: "unique tensor names".to_string(),
                }
                .into());
            }
        }
        let mut model = Model {
            storage,
            header,
            metadata,
            tensors,
            by_name,
            token_embd: 0,
            output_norm: 0,
            output: 0,
            layers: Vec::new(),
        };
        model.resolve_tensors()?;
        if options.verify_tensors {
            model.verify_tensors()?;
        }
        Ok(model)
    }

    /// Finds every tensor the architecture needs and checks its shape against the metadata.
    fn resolve_tensors(&mut self) -> Result<()> {
        let meta = &self.metadata;
        let hidden = meta.hidden_dim as u64;
        let vocab = meta.vocab_size as u64;
        self.token_embd = self.find("token_embd", &[vocab, hidden])?;
        self.output_norm = self.find("output_norm", &[hidden])?;
        self.output = if meta.tie_embeddings { self.token_embd } else { self.find("output", &[vocab, hidden])? };

        let arch = meta.architecture;
        let mut layers = Vec::with_capacity(meta.layers.len());
        for (i, dims) in meta.layers.iter().enumerate() {
            let q_dim = dims.n_heads as u64 * dims.head_dim as u64;
            let kv_dim = dims.n_kv_heads as u64 * dims.head_dim as u64;
            let ffn = dims.ffn_dim as u64;
            let head = dims.head_dim as u64;
            let name = |suffix: &str| format!("layers.{i}.{suffix}");
            let optional = |this: &Self, present: bool, suffix: &str, shape: &[u64]| -> Result<Option<usize>> {
                if present { this.find(&name(suffix), shape).map(Some) } else { Ok(None) }
            };
            layers.push(LayerTensors {
                attn_norm: self.find(&name("attn_norm"), &[hidden])?,
                attn_q: self.find(&name("attn_q"), &[q_dim, hidden])?,
                attn_k: self.find(&name("attn_k"), &[kv_dim, hidden])?,
                attn_v: self.find(&name("attn_v"), &[kv_dim, hidden])?,
                attn_q_bias: optional(self, arch.has_qkv_bias(), "attn_q_bias", &[q_dim])?,
                attn_k_bias: optional(self, arch.has_qkv_bias(), "attn_k_bias", &[kv_dim])?,
                attn_v_bias: optional(self, arch.has_qkv_bias(), "attn_v_bias", &[kv_dim])?,
                attn_q_norm: optional(self, arch.has_qk_norm(), "attn_q_norm", &[head])?,
                attn_k_norm: optional(self, arch.has_qk_norm(), "attn_k_norm", &[head])?,
                attn_output: self.find(&name("attn_output"), &[hidden, q_dim])?,
                ffn_norm: self.find(&name("ffn_norm"), &[hidden])?,
                ffn_gate: self.find(&name("ffn_gate"), &[ffn, hidden])?,
                ffn_up: self.find(&name("ffn_up"), &[ffn, hidden])?,
                ffn_down: self.find(&name("ffn_down"), &[hidden, ffn])?,
            });
        }
        self.layers = layers;
        Ok(())
    }

    fn find(&self, name: &str, shape: &[u64]) -> Result<usize> {
        let index = *self.by_name.get(name).ok_or_else(|| ErrorKind::MissingTensor { name: name.to_string() })?;
        let entry = &self.tensors[index];
        if entry.shape != shape {
            return Err(ErrorKind::ShapeMismatch { tensor: name.to_string(), found: entry.shape.clone(), expected: shape.to_vec() }.into());
        }
        if shape.len() == 1 && entry.dtype.is_quantized() {
            return Err(ErrorKind::UnsupportedDtype { tensor: name.to_string(), dtype: format!("{} (vectors must be f32, f16 or bf16)", entry.dtype) }.into());
        }
        Ok(index)
    }

    /// Checks the CRC-32 of every tensor against the table. Reads the whole file.
    pub fn verify_tensors(&self) -> Result<()> {
        for entry in &self.tensors {
            let computed = crc32(self.tensor_bytes(entry));
            if computed != entry.crc32 {
                return Err(ErrorKind::ChecksumMismatch { what: format!("tensor {}", entry.name), stored: entry.crc32, computed }.into());
            }
        }
        for (index, entry) in self.tensors.iter().enumerate() {
            if let Some(at) = first_non_finite(self.data(index), &entry.shape) {
                return Err(ErrorKind::NonFinite { what: format!("tensor {}", entry.name), index: at }.into());
            }
        }
        Ok(())
    }

    /// Returns the model description.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Returns the decoded file header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Returns the tensor table, in file order.
    pub fn tensors(&self) -> &[TensorEntry] {
        &self.tensors
    }

    /// Returns the Hugging Face `tokenizer.json` bytes, empty when the file has no tokenizer.
    pub fn tokenizer_json(&self) -> &[u8] {
        section(self.storage.bytes(), self.header.tokenizer)
    }

    /// Size of the whole file in bytes.
    pub fn file_size(&self) -> usize {
        self.storage.bytes().len()
    }

    /// Number of weights (elements of all tensors).
    pub fn parameter_count(&self) -> u64 {
        self.tensors.iter().map(|entry| entry.element_count().unwrap_or(0)).sum()
    }

    /// Returns the raw bytes of a table entry.
    pub fn tensor_bytes(&self, entry: &TensorEntry) -> &[u8] {
        let start = (self.header.data.offset + entry.offset) as usize;
        &self.storage.bytes()[start..start + entry.length as usize]
    }

    /// Returns the elements of the tensor named `name`, or `None` when there is none.
    pub fn tensor(&self, name: &str) -> Option<TensorData<'_>> {
        self.by_name.get(name).map(|&index| self.data(index))
    }

    fn data(&self, index: usize) -> TensorData<'_> {
        let entry = &self.tensors[index];
        let bytes = self.tensor_bytes(entry);
        // Alignment and length were checked at open, so the casts cannot fail. If that invariant
        // were ever broken, an empty view is returned rather than a panic.
        match entry.dtype {
            DType::F32 => TensorData::F32(bytemuck::try_cast_slice(bytes).unwrap_or(&[])),
            DType::F16 => TensorData::F16(bytemuck::try_cast_slice(bytes).unwrap_or(&[])),
            DType::BF16 => TensorData::BF16(bytemuck::try_cast_slice(bytes).unwrap_or(&[])),
            DType::Quant(qtype) => TensorData::Quant { qtype, data: bytes },
        }
    }

    fn matrix(&self, index: usize) -> Matrix<'_> {
        let shape = &self.tensors[index].shape;
        Matrix { data: self.data(index), rows: shape[0] as usize, cols: shape[1] as usize }
    }

    /// Returns the token embedding matrix, `[vocab, hidden]`.
    pub fn token_embd(&self) -> Matrix<'_> {
        self.matrix(self.token_embd)
    }

    /// Returns the final RMSNorm weight, `[hidden]`.
    pub fn output_norm(&self) -> TensorData<'_> {
        self.data(self.output_norm)
    }

    /// Returns the output head, `[vocab, hidden]`, which is the embedding matrix when
    /// embeddings are tied.
    pub fn output(&self) -> Matrix<'_> {
        self.matrix(self.output)
    }

    /// The weights of decoder layer `layer`.
    ///
    /// # Panics
    /// When `layer` is not below the number of layers.
    pub fn layer(&self, layer: usize) -> LayerWeights<'_> {
        let t = &self.layers[layer];
        let opt = |index: Option<usize>| index.map(|i| self.data(i));
        LayerWeights {
            attn_norm: self.data(t.attn_norm),
            attn_q: self.matrix(t.attn_q),
            attn_k: self.matrix(t.attn_k),
            attn_v: self.matrix(t.attn_v),
            attn_q_bias: opt(t.attn_q_bias),
            attn_k_bias: opt(t.attn_k_bias),
            attn_v_bias: opt(t.attn_v_bias),
            attn_q_norm: opt(t.attn_q_norm),
            attn_k_norm: opt(t.attn_k_norm),
            attn_output: self.matrix(t.attn_output),
            ffn_norm: self.data(t.ffn_norm),
            ffn_gate: self.matrix(t.ffn_gate),
            ffn_up: self.matrix(t.ffn_up),
            ffn_down: self.matrix(t.ffn_down),
        }
    }
}

/// The bytes of a section whose bounds `Header::parse` has checked.
fn section(bytes: &[u8], section: crate::format::header::Section) -> &[u8] {
    &bytes[section.offset as usize..(section.offset + section.len) as usize]
}

/// Checks that every tensor is aligned in memory for its element type. The file offsets are
/// 64-byte aligned, so this fails only for a caller's buffer that starts misaligned.
fn check_memory_alignment(bytes: &[u8], header: &Header, tensors: &[TensorEntry]) -> Result<()> {
    let base = bytes.as_ptr() as usize;
    for entry in tensors {
        let address = base.wrapping_add((header.data.offset + entry.offset) as usize);
        let alignment = entry.dtype.alignment();
        if address % alignment != 0 {
            return Err(ErrorKind::Misaligned { tensor: entry.name.clone(), offset: address as u64, alignment: alignment as u64 }.into());
        }
    }
    Ok(())
}

/// Checks that no two tensors share bytes.
fn check_no_overlap(tensors: &[TensorEntry]) -> Result<()> {
    let mut ranges: Vec<(u64, u64, usize)> = tensors.iter().enumerate().map(|(i, e)| (e.offset, e.offset + e.length, i)).collect();
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        let (_, end, first) = pair[0];
        let (start, _, second) = pair[1];
        if start < end {
            let second = &tensors[second];
            return Err(ErrorKind::OutOfBounds {
                what: format!("tensor {} (overlaps tensor {})", second.name, tensors[first].name),
                offset: second.offset,
                length: second.length,
                limit: end,
            }
            .into());
        }
    }
    Ok(())
}

/// The index of the first NaN or infinite element of a tensor, dequantizing block formats row
/// by row.
fn first_non_finite(data: TensorData<'_>, shape: &[u64]) -> Option<u64> {
    fn position(mut values: impl Iterator<Item = f32>) -> Option<u64> {
        values.position(|v| !v.is_finite()).map(|i| i as u64)
    }
    match data {
        TensorData::F32(values) => position(values.iter().copied()),
        TensorData::F16(values) => position(values.iter().map(|v| v.to_f32())),
        TensorData::BF16(values) => position(values.iter().map(|v| v.to_f32())),
        TensorData::Quant { qtype, data } => {
            let (rows, cols) = (shape.first().copied().unwrap_or(0) as usize, shape.get(1).copied().unwrap_or(0) as usize);
            let mut row_values = alloc::vec![0.0f32; cols];
            (0..rows).find_map(|row| {
                crate::quant::dequantize_row(qtype, data, rows, cols, row, &mut row_values);
                position(row_values.iter().copied()).map(|col| (row * cols) as u64 + col)
            })
        }
    }
}
