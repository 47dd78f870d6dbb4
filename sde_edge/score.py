"""Network output -> (x0_hat, score, s(x0_hat, t)): the one place that does it (paper_appendix/math.md, section 4).

A *model* is any callable ``model(x, t)`` (x pixel images, t a (B,) tensor in [0, 1]) with an
attribute ``parameterization``:

* ``scaled_eps``: the output is n = x_t - alpha(t) x0 (sigma(x0, t) * eps for the edge process),
  so x0_hat = (x_t - n) / alpha(t);
* ``x0``: the output is x0_hat, so n = x_t - alpha(t) x0_hat;
* ``eps``: the output is the unscaled noise eps_hat (DDPM's network), so n = s(t) eps_hat in the
  process's basis. Defined only for processes whose noise std does not depend on x0 (isotropic
  ``edge``, ``blur``, ``bluenoise``): for the edge-preserving process s = sigma(x0, t), and reading
  x0_hat would need sigma(x0_hat, t) first, which is circular.

Either way the score is -n / s(x0_hat, t)^2 per coordinate of the process's basis.
``Denoiser`` binds (model, sde) once, as k-diffusion's wrappers and EDM's preconditioning do:
samplers call ``denoiser(y, t)`` on basis coordinates and never see the network.
"""
from sde_edge.tensors import time_like

PARAMETERIZATIONS = ("scaled_eps", "x0", "eps")


def parameterization_of(model):
    name = getattr(model, "parameterization", None)
    if name not in PARAMETERIZATIONS:
        raise ValueError(
            f"model.parameterization must be one of {PARAMETERIZATIONS}, got {name!r}; "
            "wrap a bare network so that it carries the value of config.model.parameterization"
        )
    return name


class Denoised:
    """The model's reading of (y, t), per coordinate of the process's basis."""

    def __init__(self, output, x0, image, noise, std, statistic):
        self.output = output  # the model's raw output (pixels)
        self.x0 = x0  # x0_hat in the basis
        self.image = image  # x0_hat as pixels
        self.noise = noise  # n_hat = y - alpha(t) x0_hat
        self.std = std  # s(x0_hat, t), broadcastable to y
        self.statistic = statistic  # noise_statistic(x0_hat): G^2 without a second Sobel

    @property
    def score(self):
        """-n_hat / s(x0_hat, t)^2."""
        return -self.noise / self.std.square()


class Denoiser:
    """``denoiser(y, t)`` -> ``Denoised``: the model bound to its process (see the module docstring)."""

    def __init__(self, model, sde):
        self.model, self.sde = model, sde
        self.parameterization = parameterization_of(model)
        if self.parameterization == "eps" and sde.noise_depends_on(sde.config):
            raise ValueError(f"model.parameterization='eps' needs a noise std that does not depend on x0, but {sde!r} "
                             "has sigma(x0, t); use 'scaled_eps' or 'x0'")

    def _output(self, y, t):
        x = self.sde.from_basis(y)
        output = self.model(x, t.reshape(-1))
        if output.shape != x.shape:
            raise ValueError(f"the model returned shape {tuple(output.shape)} for input shape {tuple(x.shape)}")
        return output

    def read(self, output, y, t):
        """(n_hat, x0_hat) in the basis from a model output at (y, t): the one parameterization switch."""
        alpha = self.sde.alpha(t, y)
        output = self.sde.to_basis(output)
        if self.parameterization == "x0":
            return y - alpha * output, output
        noise = output if self.parameterization == "scaled_eps" else self.sde.noise_std(None, t, y) * output
        return noise, (y - noise) / alpha

    def noise_in_basis(self, y, t):
        """n_hat = y - alpha(t) x0_hat in the basis: what the loss compares with s eps."""
        t = time_like(t, y)
        return self.read(self._output(y, t), y, t)[0]

    def interpret(self, output, y, t):
        """A ``Denoised`` from a model output already computed at (y, t); t (B, 1, 1, 1)."""
        noise, x0 = self.read(output, y, t)
        image = self.sde.from_basis(x0)
        statistic = self.sde.noise_statistic(image)
        return Denoised(output, x0, image, noise, self.sde.noise_std(statistic, t, y), statistic)

    def __call__(self, y, t):
        """Evaluate the model once at (y, t) and read x0_hat, the score and s(x0_hat, t) from it."""
        t = time_like(t, y)
        return self.interpret(self._output(y, t), y, t)
