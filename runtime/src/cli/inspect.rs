//! `tinyllm inspect`: metadata, per-layer dimensions, tensor table and sizes.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Result;
use clap::Args;
use tinyllm::{Model, OpenOptions};

use super::ModelArg;

/// Options of `tinyllm inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    model: ModelArg,
    /// Check the CRC-32 of every tensor (reads the whole file).
    #[arg(long)]
    verify: bool,
    /// Leave out the tensor table.
    #[arg(long)]
    no_tensors: bool,
}

/// Runs `tinyllm inspect`.
pub fn inspect(args: InspectArgs) -> Result<()> {
    let model = Model::open_with(&args.model.model, OpenOptions { verify_tensors: args.verify })?;
    let meta = model.metadata();
    let mut out = String::new();
    let header = model.header();
    writeln!(out, "file:            {} ({} bytes, format version {})", args.model.model.display(), model.file_size(), header.version)?;
    if let Some(name) = &meta.name {
        writeln!(out, "name:            {name}")?;
    }
    if let Some(source) = &meta.source {
        writeln!(out, "source:          {source}")?;
    }
    writeln!(out, "architecture:    {}", meta.architecture.name())?;
    writeln!(out, "parameters:      {} ({:.1} M)", model.parameter_count(), model.parameter_count() as f64 / 1e6)?;
    writeln!(out, "vocabulary:      {}", meta.vocab_size)?;
    writeln!(out, "hidden:          {}", meta.hidden_dim)?;
    writeln!(out, "layers:          {}", meta.layers.len())?;
    writeln!(out, "max context:     {}", meta.max_context)?;
    // The value was stored from an f32 (the models' own type), so print it at f32 precision.
    writeln!(out, "norm epsilon:    {:e}", meta.norm_eps as f32)?;
    writeln!(out, "tied embeddings: {}", meta.tie_embeddings)?;
    let scaling = match meta.rope.scaling {
        None => "none".to_string(),
        Some(scaling) => format!("{scaling:?}"),
    };
    let layout = match meta.rope.layout {
        tinyllm::format::metadata::RopeLayout::Half => "half (rotate_half)",
        tinyllm::format::metadata::RopeLayout::Interleaved => "interleaved (pairs 2i, 2i+1)",
    };
    writeln!(out, "RoPE:            theta {}, layout {layout}, scaling {}", meta.rope.theta, scaling)?;
    let id = |token: Option<u32>| token.map_or_else(|| "none".to_string(), |t| t.to_string());
    let eos: Vec<String> = meta.eos_token_ids.iter().map(u32::to_string).collect();
    let eos = if eos.is_empty() { "none".to_string() } else { eos.join(", ") };
    writeln!(out, "BOS / EOS / pad: {} / {} / {}", id(meta.bos_token_id), eos, id(meta.pad_token_id))?;
    writeln!(
        out,
        "tokenizer:       {} bytes of tokenizer.json, chat template {}",
        model.tokenizer_json().len(),
        if meta.tokenizer.chat_template.is_some() { "present" } else { "absent" }
    )?;
    writeln!(out, "kernels:         {}", super::kernels_line())?;
    let mut types: Vec<(String, u64)> = Vec::new();
    for t in model.tensors() {
        let name = t.dtype.to_string();
        match types.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => *count += 1,
            None => types.push((name, 1)),
        }
    }
    let types: Vec<String> = types.iter().map(|(name, count)| format!("{count} {name}")).collect();
    writeln!(out, "tensor types:    {}", types.join(", "))?;
    let bits = model.tensors().iter().map(|t| t.length).sum::<u64>() as f64 * 8.0 / model.parameter_count().max(1) as f64;
    writeln!(out, "bits per weight: {bits:.2}")?;
    writeln!(out)?;
    writeln!(out, "{:>5} {:>7} {:>8} {:>8} {:>8}", "layer", "heads", "kv_heads", "head_dim", "ffn_dim")?;
    for (i, layer) in meta.layers.iter().enumerate() {
        writeln!(out, "{:>5} {:>7} {:>8} {:>8} {:>8}", i, layer.n_heads, layer.n_kv_heads, layer.head_dim, layer.ffn_dim)?;
    }
    if !args.no_tensors {
        writeln!(out)?;
        writeln!(out, "{:<28} {:>5} {:>14} {:>12} {:>12} {:>10}", "tensor", "type", "shape", "offset", "bytes", "crc32")?;
        for t in model.tensors() {
            let shape = t.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
            writeln!(out, "{:<28} {:>5} {:>14} {:>12} {:>12} {:08x}", t.name, t.dtype, shape, t.offset, t.length, t.crc32)?;
        }
    }
    let tensor_bytes: u64 = model.tensors().iter().map(|t| t.length).sum();
    writeln!(out)?;
    writeln!(out, "tensor data:     {} bytes ({:.1} MiB) in {} tensors", tensor_bytes, tensor_bytes as f64 / 1048576.0, model.tensors().len())?;
    if args.verify {
        writeln!(out, "verify:          all {} tensor checksums match", model.tensors().len())?;
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
