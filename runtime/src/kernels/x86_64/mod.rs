//! x86-64 kernels (AVX2 + FMA + F16C).

use super::Kernels;

/// Whether the CPU has AVX2, FMA and F16C.
pub(super) fn supported() -> bool {
    #[cfg(feature = "std")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(all(target_feature = "avx2", target_feature = "fma", target_feature = "f16c"))
    }
}

/// The AVX2 table. Only reachable through `for_isa`, which checks `supported` first.
pub(super) fn table() -> &'static Kernels {
    // NOTE: until the AVX2 kernels land, this table is the scalar one under the AVX2 name.
    static AVX2: Kernels = Kernels { isa: super::Isa::Avx2, ..super::SCALAR };
    &AVX2
}
