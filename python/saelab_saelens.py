"""Teach SAELens saelab's hierarchical SAE.

    import saelab_saelens            # registers the architecture "saelab_hierarchical"
    from sae_lens import SAE
    sae = SAE.load_from_disk("runs/run_2/sae")   # a HierarchicalSAE: children gated by their parent

saelab exports a hierarchical SAE in SAELens' layout with cfg.json's "architecture" set to
"saelab_hierarchical" and two more fields, n_parents (P) and children_per_parent (m). Latents [0, P)
are parents and [P, P + P·m) children; child P + j belongs to parent j // m. Everything else is
SAELens' standard SAE (pre = (x − b_dec) W_enc + b_enc, f = ReLU(pre), x̂ = f W_dec + b_dec); the
hierarchy adds one step: a child is zeroed wherever its parent's f is 0. Without this module SAELens
refuses the file (KeyError: 'saelab_hierarchical') instead of loading children that fire alone.

Exports written before the architecture had its own name say "standard" and keep the hierarchy under
cfg["saelab"]["hierarchy"]; load them with SAE.load_from_disk(path, converter=saelab_saelens.disk_loader).

Tested with sae-lens 6.54 (scripts/reference/check_saelens_load.py).
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from sae_lens import StandardSAE, StandardSAEConfig, register_sae_class
from sae_lens.loading.pretrained_sae_loaders import sae_lens_disk_loader
from sae_lens.registry import SAE_CLASS_REGISTRY

ARCHITECTURE = "saelab_hierarchical"


@dataclass
class HierarchicalSAEConfig(StandardSAEConfig):
    n_parents: int = 0            # P
    children_per_parent: int = 0  # m; d_sae = P·(1 + m)

    @classmethod
    def architecture(cls) -> str:
        return ARCHITECTURE

    def __post_init__(self):
        super().__post_init__()
        P, m = self.n_parents, self.children_per_parent
        if P <= 0 or m <= 0 or self.d_sae != P * (1 + m):
            raise ValueError(f"{ARCHITECTURE}: n_parents {P} and children_per_parent {m} must be > 0 "
                             f"with d_sae = n_parents·(1 + children_per_parent); got d_sae {self.d_sae}")


class HierarchicalSAE(StandardSAE):
    """SAELens' standard SAE with saelab's parent gate on the children."""

    cfg: HierarchicalSAEConfig  # type: ignore[assignment]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        sae_in = self.process_sae_in(x)
        hidden_pre = self.hook_sae_acts_pre(sae_in @ self.W_enc + self.b_enc)
        return self.hook_sae_acts_post(self.gate(self.activation_fn(hidden_pre)))

    def gate(self, f: torch.Tensor) -> torch.Tensor:
        """Zeroes each child (..., P + j) where its parent (..., j // m) is 0."""
        P, m = self.cfg.n_parents, self.cfg.children_per_parent
        parents, children = f[..., :P], f[..., P:]
        parent_on = (parents > 0).repeat_interleave(m, dim=-1)
        return torch.cat([parents, torch.where(parent_on, children, torch.zeros_like(children))], dim=-1)


def disk_loader(path: str | Path, device: str = "cpu",
                cfg_overrides: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """SAELens' disk loader that also reads saelab's older hierarchical exports ("standard" + saelab.hierarchy)."""
    cfg, state = sae_lens_disk_loader(path, device, cfg_overrides)
    h = cfg.get("saelab", {}).get("hierarchy")
    if h is not None and cfg.get("architecture", "standard") == "standard":
        cfg.update(architecture=ARCHITECTURE, n_parents=h["n_parents"], children_per_parent=h["children_per_parent"])
    return cfg, state


if ARCHITECTURE not in SAE_CLASS_REGISTRY:  # importlib.reload must not register twice
    register_sae_class(ARCHITECTURE, HierarchicalSAE, HierarchicalSAEConfig)
