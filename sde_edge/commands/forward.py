"""sde-edge forward: a PNG of the forward process, isotropic against edge-preserving."""
from absl import flags

from sde_edge.config import default_diffusion
from sde_edge.figures import forward_process_figure, load_photo
from sde_edge.processes.edge import VPSDE, EdgePreservingSDE
from sde_edge.processes.schedules import TRANSITIONS

_OUT = flags.DEFINE_string("out", "forward_process.png", "Where to write the PNG.")
_TAU = flags.DEFINE_enum("tau", "linear", list(TRANSITIONS), "Transition function of the edge-preserving rows.")
_T_PHI = flags.DEFINE_float("t_phi", 0.5, "Transition point t_phi in (0, 1].")
_PHOTO = flags.DEFINE_string("photo", "chelsea", "An embedded skimage.data photo (no download).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the shared noise eps.")


def main():
    diffusion = default_diffusion(tau=_TAU.value, t_phi=_T_PHI.value)
    processes = {"isotropic": VPSDE(diffusion), f"edge ({_TAU.value})": EdgePreservingSDE(diffusion)}
    path = forward_process_figure(load_photo(_PHOTO.value), processes, _OUT.value, seed=_SEED.value)
    print(f"forward process: {path}")
