//! aarch64 kernels: NEON, NEON with dotprod (`sdot`), NEON with i8mm (`smmla`).

use super::{Isa, Kernels};

/// Whether the CPU has the extensions of `isa`.
pub(super) fn supported(isa: Isa) -> bool {
    #[cfg(feature = "std")]
    {
        match isa {
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            Isa::Dotprod => std::arch::is_aarch64_feature_detected!("neon") && std::arch::is_aarch64_feature_detected!("dotprod"),
            Isa::I8mm => {
                std::arch::is_aarch64_feature_detected!("neon")
                    && std::arch::is_aarch64_feature_detected!("dotprod")
                    && std::arch::is_aarch64_feature_detected!("i8mm")
            }
            _ => false,
        }
    }
    #[cfg(not(feature = "std"))]
    {
        match isa {
            Isa::Neon => cfg!(target_feature = "neon"),
            Isa::Dotprod => cfg!(all(target_feature = "neon", target_feature = "dotprod")),
            Isa::I8mm => cfg!(all(target_feature = "neon", target_feature = "dotprod", target_feature = "i8mm")),
            _ => false,
        }
    }
}

/// The table of `isa`. Only reachable through `for_isa`, which checks `supported` first.
pub(super) fn table(isa: Isa) -> &'static Kernels {
    // NOTE: until the NEON kernels land, these tables are the scalar one under their names.
    static NEON: Kernels = Kernels { isa: Isa::Neon, ..super::SCALAR };
    static DOTPROD: Kernels = Kernels { isa: Isa::Dotprod, ..super::SCALAR };
    static I8MM: Kernels = Kernels { isa: Isa::I8mm, ..super::SCALAR };
    match isa {
        Isa::Dotprod => &DOTPROD,
        Isa::I8mm => &I8MM,
        _ => &NEON,
    }
}
