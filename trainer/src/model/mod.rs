//! Llama, Qwen2 and Qwen3 decoders in candle with per-layer dimensions, described by the same
//! [`Metadata`] as a `.tllm` file.
//!
//! Parameters carry their `.tllm` names (`token_embd`, `layers.3.attn_q`, `output`). The query
//! and key rows are always in the Hugging Face half RoPE layout: GGUF Llama rows are
//! un-permuted on load.

pub mod load;
pub mod params;
pub mod rope;
pub mod save;
pub mod student;
pub mod vocab;

use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Device, Tensor, Var, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tinyllm::format::Metadata;

use crate::error::{Result, TrainError};
use rope::RopeAngles;

/// A decoder whose parameters are candle variables.
pub struct Decoder {
    /// Architecture and dimensions.
    pub metadata: Metadata,
    /// The Hugging Face `tokenizer.json` bytes, when the source had a tokenizer.
    pub tokenizer_json: Option<Vec<u8>>,
    params: BTreeMap<String, Var>,
    /// Parameter names in the converter's write order.
    order: Vec<String>,
    dtype: DType,
    device: Device,
    frozen: bool,
}

/// The tokens of one packed batch and which tokens may attend to which.
pub struct ModelInput {
    /// Token ids, `[batch, seq]`.
    pub ids: Tensor,
    /// Position of each token inside its own example, `batch × seq` values.
    pub positions: Vec<u32>,
    /// Additive attention mask `[batch, 1, seq, seq]`: 0 where attention is allowed (causal and
    /// inside one example), a large negative value elsewhere.
    pub mask: Tensor,
    /// Number of sequences.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq: usize,
}

impl ModelInput {
    /// Builds the input of sequences of `seq` tokens. `segments` numbers the examples inside
    /// each sequence. A token attends to earlier tokens of its own segment only, so packed
    /// examples do not see each other; each example's positions restart at 0.
    pub fn new(ids: &[u32], segments: &[u32], batch: usize, seq: usize, dtype: DType, device: &Device) -> candle_core::Result<ModelInput> {
        let mut positions = Vec::with_capacity(ids.len());
        let mut mask = vec![0f32; batch * seq * seq];
        for b in 0..batch {
            let row = &segments[b * seq..(b + 1) * seq];
            let mut position = 0u32;
            for t in 0..seq {
                if t > 0 && row[t] != row[t - 1] {
                    position = 0;
                }
                positions.push(position);
                position += 1;
                for s in 0..seq {
                    if s > t || row[s] != row[t] {
                        mask[(b * seq + t) * seq + s] = -1e9;
                    }
                }
            }
        }
        Ok(ModelInput {
            ids: Tensor::from_slice(ids, (batch, seq), device)?,
            positions,
            mask: Tensor::from_vec(mask, (batch, 1, seq, seq), device)?.to_dtype(dtype)?,
            batch,
            seq,
        })
    }

    /// Returns the same sequences, positions and mask with other token ids (`[batch, seq]`).
    pub fn with_ids(&self, ids: Tensor) -> ModelInput {
        ModelInput { ids, positions: self.positions.clone(), mask: self.mask.clone(), batch: self.batch, seq: self.seq }
    }

    /// Builds the input of one unpacked sequence.
    pub fn single(ids: &[u32], dtype: DType, device: &Device) -> candle_core::Result<ModelInput> {
        ModelInput::new(ids, &vec![0; ids.len()], 1, ids.len(), dtype, device)
    }
}

/// RMSNorm over the last dimension: `x / sqrt(mean(x²) + eps) * weight`.
fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let mean_square = x.sqr()?.mean_keepdim(D::Minus1)?;
    let normalized = x.broadcast_div(&(mean_square + eps)?.sqrt()?)?;
    normalized.broadcast_mul(weight)
}

/// `x W^T (+ b)` for `x` of shape `[rows, in]`.
fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let y = x.matmul(&weight.t()?)?;
    match bias {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

impl Decoder {
    /// Builds a model from named tensors, which must match the metadata's parameter list.
    pub fn from_tensors(metadata: Metadata, tokenizer_json: Option<Vec<u8>>, mut tensors: HashMap<String, Tensor>, origin: &std::path::Path, dtype: DType, device: &Device) -> Result<Decoder> {
        let mut params = BTreeMap::new();
        let mut order = Vec::new();
        for (name, shape) in params::parameter_shapes(&metadata) {
            let tensor = tensors.remove(&name).ok_or_else(|| TrainError::MissingTensor { path: origin.to_path_buf(), name: name.clone() })?;
            if tensor.dims() != shape.as_slice() {
                return Err(TrainError::TensorShape { path: origin.to_path_buf(), name, found: tensor.dims().to_vec(), expected: shape });
            }
            // detach() makes from_tensor copy the data, so no two models share a parameter buffer.
            let var = Var::from_tensor(&tensor.to_dtype(dtype)?.to_device(device)?.detach())?;
            params.insert(name.clone(), var);
            order.push(name);
        }
        Ok(Decoder { metadata, tokenizer_json, params, order, dtype, device: device.clone(), frozen: false })
    }

    /// Builds a model with random weights: matrices drawn uniformly from ±`scale`, norm weights
    /// 1, biases uniform from ±`scale`. For tests and micro models.
    pub fn random(metadata: Metadata, seed: u64, scale: f64, dtype: DType, device: &Device) -> Result<Decoder> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut tensors = HashMap::new();
        for (name, shape) in params::parameter_shapes(&metadata) {
            let count: usize = shape.iter().product();
            let is_norm = shape.len() == 1 && !name.ends_with("_bias");
            let values: Vec<f32> = if is_norm { vec![1.0; count] } else { (0..count).map(|_| (rng.random::<f64>() * 2.0 - 1.0) as f32 * scale as f32).collect() };
            tensors.insert(name, Tensor::from_vec(values, shape, device)?);
        }
        Decoder::from_tensors(metadata, None, tensors, std::path::Path::new("<random>"), dtype, device)
    }

    /// Marks the model as a teacher: its forward pass records no gradient graph.
    pub fn freeze(&mut self) {
        self.frozen = true;
    }

    /// Element type of the parameters.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Device of the parameters.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Parameter names in the converter's write order.
    pub fn names(&self) -> &[String] {
        &self.order
    }

    /// The variable of parameter `name`.
    pub fn var(&self, name: &str) -> Option<&Var> {
        self.params.get(name)
    }

    /// Every parameter as `(name, variable)`, in write order.
    pub fn vars(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.order.iter().map(|name| (name, &self.params[name]))
    }

    /// Number of weights.
    pub fn parameter_count(&self) -> usize {
        self.params.values().map(|v| v.elem_count()).sum()
    }

    fn weight(&self, name: &str) -> Tensor {
        // Every name asked for here comes from parameter_shapes, which built the map.
        let var = &self.params[name];
        if self.frozen {
            var.as_detached_tensor()
        } else {
            var.as_tensor().clone()
        }
    }

    fn weight_opt(&self, name: &str) -> Option<Tensor> {
        self.params.contains_key(name).then(|| self.weight(name))
    }

    /// Computes the logits `[batch, seq, vocab]` of every position.
    pub fn forward(&self, input: &ModelInput) -> Result<Tensor> {
        let x = self.final_hidden(input)?;
        let logits = self.output_head(&x)?;
        Ok(logits.reshape((input.batch, input.seq, self.metadata.vocab_size as usize))?)
    }

    /// Computes the logits `[rows, vocab]` of the positions `rows` only: indices into the
    /// flattened `batch × seq` positions. Equal to the same rows of [`Decoder::forward`], but
    /// the output head, whose cost and activations grow with the vocabulary, runs only where
    /// a loss needs it.
    pub fn forward_rows(&self, input: &ModelInput, rows: &Tensor) -> Result<Tensor> {
        let x = self.final_hidden(input)?.index_select(rows, 0)?;
        self.output_head(&x)
    }

    /// Multiplies final hidden states `[rows, hidden]` by the output head.
    fn output_head(&self, x: &Tensor) -> Result<Tensor> {
        let head = if self.metadata.tie_embeddings { self.weight("token_embd") } else { self.weight("output") };
        Ok(linear(x, &head, None)?)
    }

    /// Runs the layers and the final norm: hidden states `[batch·seq, hidden]`.
    fn final_hidden(&self, input: &ModelInput) -> Result<Tensor> {
        let (batch, seq) = (input.batch, input.seq);
        let hidden = self.metadata.hidden_dim as usize;
        let eps = self.metadata.norm_eps;
        let flat_ids = input.ids.flatten_all()?;
        let mut x = self.weight("token_embd").index_select(&flat_ids, 0)?;

        let mut angles: HashMap<usize, RopeAngles> = HashMap::new();
        for (i, layer) in self.metadata.layers.iter().enumerate() {
            let head_dim = layer.head_dim as usize;
            if !angles.contains_key(&head_dim) {
                let table = RopeAngles::new(&self.metadata.rope, head_dim, &input.positions, batch, seq, self.dtype, &self.device)?;
                angles.insert(head_dim, table);
            }
            let name = |short: &str| format!("layers.{i}.{short}");
            let attn_in = rms_norm(&x, &self.weight(&name("attn_norm")), eps)?;
            let attn_out = self.attention(i, &attn_in, input, &angles[&head_dim])?;
            x = (x + attn_out)?;

            let ffn_in = rms_norm(&x, &self.weight(&name("ffn_norm")), eps)?;
            let gate = linear(&ffn_in, &self.weight(&name("ffn_gate")), None)?.silu()?;
            let up = linear(&ffn_in, &self.weight(&name("ffn_up")), None)?;
            let ffn_out = linear(&(gate * up)?, &self.weight(&name("ffn_down")), None)?;
            x = (x + ffn_out)?;
        }
        let x = rms_norm(&x, &self.weight("output_norm"), eps)?;
        debug_assert_eq!(x.dim(1)?, hidden);
        Ok(x)
    }

    /// Grouped-query self-attention of layer `i` on `x` (`[batch·seq, hidden]`).
    fn attention(&self, i: usize, x: &Tensor, input: &ModelInput, angles: &RopeAngles) -> Result<Tensor> {
        let layer = self.metadata.layers[i];
        let (batch, seq) = (input.batch, input.seq);
        let (n_heads, n_kv, head_dim) = (layer.n_heads as usize, layer.n_kv_heads as usize, layer.head_dim as usize);
        let name = |short: &str| format!("layers.{i}.{short}");

        let q = linear(x, &self.weight(&name("attn_q")), self.weight_opt(&name("attn_q_bias")).as_ref())?;
        let k = linear(x, &self.weight(&name("attn_k")), self.weight_opt(&name("attn_k_bias")).as_ref())?;
        let v = linear(x, &self.weight(&name("attn_v")), self.weight_opt(&name("attn_v_bias")).as_ref())?;
        let mut q = q.reshape((batch, seq, n_heads, head_dim))?;
        let mut k = k.reshape((batch, seq, n_kv, head_dim))?;
        let v = v.reshape((batch, seq, n_kv, head_dim))?.transpose(1, 2)?;
        if self.metadata.architecture.has_qk_norm() {
            q = rms_norm(&q, &self.weight(&name("attn_q_norm")), self.metadata.norm_eps)?;
            k = rms_norm(&k, &self.weight(&name("attn_k_norm")), self.metadata.norm_eps)?;
        }
        let q = angles.apply(&q.transpose(1, 2)?.contiguous()?)?;
        let k = angles.apply(&k.transpose(1, 2)?.contiguous()?)?;
        let (k, v) = (repeat_kv(&k, n_heads / n_kv)?, repeat_kv(&v, n_heads / n_kv)?);

        let scale = 1.0 / (head_dim as f64).sqrt();
        let scores = (q.contiguous()?.matmul(&k.t()?.contiguous()?)? * scale)?;
        let scores = scores.broadcast_add(&input.mask)?;
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let out = weights.matmul(&v.contiguous()?)?;
        let out = out.transpose(1, 2)?.reshape((batch * seq, n_heads * head_dim))?;
        Ok(linear(&out, &self.weight(&name("attn_output")), None)?)
    }
}

/// Repeats each key/value head `times` times along the head axis (`[b, kv, t, d]` to
/// `[b, kv·times, t, d]`).
fn repeat_kv(x: &Tensor, times: usize) -> candle_core::Result<Tensor> {
    if times == 1 {
        return Ok(x.clone());
    }
    let (b, kv, t, d) = x.dims4()?;
    x.unsqueeze(2)?.broadcast_as((b, kv, times, t, d))?.reshape((b, kv * times, t, d))
}
