//! Reads and writes f32 tensors in the safetensors format.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{SafeTensors, TensorView};

use crate::error::{Result, TrainError};

/// Encodes named tensors (converted to f32) as safetensors bytes, with the header metadata
/// `format = pt` that transformers expects.
pub fn encode(tensors: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let values: Vec<f32> = tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        owned.push((name.clone(), tensor.dims().to_vec(), bytes));
    }
    let mut views = Vec::with_capacity(owned.len());
    for (name, shape, bytes) in &owned {
        let view = TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
            .map_err(|e| TrainError::Incompatible { message: format!("tensor {name}: {e:?}") })?;
        views.push((name.clone(), view));
    }
    let info = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::tensor::serialize(views, Some(info)).map_err(|e| TrainError::Incompatible { message: format!("encoding safetensors: {e:?}") })
}

/// Reads every tensor of a safetensors file as f32 tensors on `device`, converted to `dtype`.
pub fn read(path: &Path, dtype: DType, device: &Device) -> Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| TrainError::Checkpoint { path: path.to_path_buf(), message: format!("invalid safetensors file ({e:?}); delete this checkpoint to resume from an older one") })?;
    let mut out = HashMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(TrainError::Checkpoint { path: path.to_path_buf(), message: format!("tensor {name} is {:?}, expected F32", view.dtype()) });
        }
        let values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        out.insert(name, Tensor::from_vec(values, view.shape().to_vec(), device)?.to_dtype(dtype)?);
    }
    Ok(out)
}
