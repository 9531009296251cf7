"""The torch model and the torch twin of the runtime features (training only; needs torch)."""

from __future__ import annotations

import torch
from torch import nn

from ..dsp.spectral import sqrt_hann
from ..neural.backend import DF_BINS_KEY, DF_TAPS_KEY, LOOKAHEAD_KEY
from ..neural.bands import LOG_EPS, N_BANDS, N_MODEL_BINS, band_matrix

SR = 16000
HOP = 160
WIN = 320


class BandGRU(nn.Module):
    """Log band energies (and optionally log bin powers) -> dense -> GRU x layers -> (band gains, speech prob).

    Causal, one 10 ms frame per step.  Inputs and outputs of ``forward``:
    ``features`` (N, T, bands [+ bins]) raw log band powers, followed with
    ``fine_bins`` by the log powers of the 161 model bins (both normalised
    inside with fixed statistics measured on the training mix), ``h``
    (layers, N, hidden) -> ``gains`` (N, T, bands) in [0, 1], ``speech_prob``
    (N, T), ``h_out``.

    The bin powers carry what the bands average away: the harmonic fine
    structure that tells voiced speech from noise inside a band at low SNR.
    Their input layer starts at zero, so adding them to a trained band-only
    model leaves its function unchanged until fine-tuning teaches it to use them.
    """

    def __init__(self, n_bands: int = N_BANDS, hidden: int = 96, layers: int = 2, fine_bins: bool = False,
                 df_bins: int = 0, df_taps: int = 3) -> None:
        super().__init__()
        self.n_bands, self.hidden, self.layers = n_bands, hidden, layers
        self.n_fine = N_MODEL_BINS if fine_bins else 0
        if not (0 <= df_bins <= N_MODEL_BINS and df_taps >= 1):
            raise ValueError(f"BandGRU: deep filter needs 0 <= bins <= {N_MODEL_BINS} and taps >= 1, "
                             f"got {df_bins} bins, {df_taps} taps")
        self.df_bins, self.df_taps = df_bins, (df_taps if df_bins else 0)
        self.register_buffer("feat_mean", torch.zeros(n_bands + self.n_fine))
        self.register_buffer("feat_std", torch.ones(n_bands + self.n_fine))
        self.inp = nn.Linear(n_bands, hidden)
        if self.n_fine:
            self.inp_fine = nn.Linear(self.n_fine, hidden, bias=False)
            nn.init.zeros_(self.inp_fine.weight)
        self.gru = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden + n_bands, n_bands)
        self.vad = nn.Linear(hidden, 1)
        if self.df_bins:
            # complex filter taps per low bin, added to the gain path; zero at the start, so a band model
            # given a deep filter computes the same function until training teaches the filter
            self.df = nn.Linear(hidden, self.df_bins * self.df_taps * 2)
            nn.init.zeros_(self.df.weight)
            nn.init.zeros_(self.df.bias)
            self.register_buffer("df_shape", torch.tensor([self.df_bins, self.df_taps]))

    @property
    def n_features(self) -> int:
        return self.n_bands + self.n_fine

    def forward(self, features: torch.Tensor, h: torch.Tensor):
        z = (features - self.feat_mean) / self.feat_std
        zb = z[..., : self.n_bands]
        pre = self.inp(zb)
        if self.n_fine:
            pre = pre + self.inp_fine(z[..., self.n_bands:])
        y, h_out = self.gru(torch.tanh(pre), h)
        gains = torch.sigmoid(self.out(torch.cat([y, zb], dim=-1)))
        prob = torch.sigmoid(self.vad(y))[..., 0]
        if self.df_bins:
            return gains, prob, h_out, self.df(y)
        return gains, prob, h_out

    def load_band_model(self, state: dict) -> None:
        """Load a state dict; a band-only state into a ``fine_bins`` model keeps the new input path at zero,
        a state without a deep filter into a ``df_bins`` model keeps the filter at zero."""
        if self.df_bins and "df.weight" not in state:
            state = dict(state)
            own = self.state_dict()
            for key in ("df.weight", "df.bias", "df_shape"):
                state[key] = own[key].clone()
        if self.n_fine and "inp_fine.weight" not in state:
            state = dict(state)
            for key in ("feat_mean", "feat_std"):  # the bin statistics are measured afresh by the caller
                state[key] = torch.cat([state[key], getattr(self, key)[self.n_bands:]])
            state["inp_fine.weight"] = self.inp_fine.weight.detach().clone()
        self.load_state_dict(state)

    def macs_per_frame(self) -> int:
        h, b = self.hidden, self.n_bands
        gru = self.layers * 3 * (h * h + h * h)
        df = self.df_bins * self.df_taps * 2 * (h + 4)  # the filter's head and its complex taps
        return (b + self.n_fine) * h + gru + (h + b) * b + h + 2 * b * N_MODEL_BINS + df  # + pooling, interpolation


class Features(nn.Module):
    """Torch twin of :mod:`mediacore.neural.kernels`: STFT, band powers, logs (16 kHz)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.from_numpy(sqrt_hann(WIN, 2)).float())
        self.register_buffer("bands", torch.from_numpy(band_matrix()).float())  # (B, K)

    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """(N, samples) -> (N, T, 161) complex, scaled by 1/WIN; frame t ends at sample (t+1)*HOP."""
        x = torch.nn.functional.pad(x, (HOP, 0))
        spec = torch.stft(x, WIN, HOP, WIN, window=self.window, center=False, return_complex=True)
        return spec.transpose(1, 2) / WIN

    def band_power(self, power: torch.Tensor) -> torch.Tensor:
        return power @ self.bands.T

    def inputs(self, spec: torch.Tensor, fine_bins: bool) -> torch.Tensor:
        """The model's input features: log band powers, then (``fine_bins``) log bin powers."""
        power = spec.real ** 2 + spec.imag ** 2
        logb = torch.log(self.band_power(power) + LOG_EPS)
        if not fine_bins:
            return logb
        return torch.cat([logb, torch.log(power[..., :N_MODEL_BINS] + LOG_EPS)], dim=-1)

    def to_bins(self, gains: torch.Tensor) -> torch.Tensor:
        return gains @ self.bands


def deep_filter(spec: torch.Tensor, coefs: torch.Tensor, bins: int, taps: int) -> torch.Tensor:
    """Torch twin of :func:`mediacore.neural.kernels.deep_filter`: the filter's term for each step.

    ``spec`` (N, T, >= bins) complex analysis spectra, ``coefs`` (N, T, bins * taps * 2) the model's
    output at step t, which has heard frames up to t -> (N, T, bins) complex,
    ``sum_j (coefs[t, k, j, 0] + i coefs[t, k, j, 1]) * spec[t - taps + 1 + j, k]`` (frames before the
    first are zero).
    """
    n, t = coefs.shape[:2]
    c = coefs.reshape(n, t, bins, taps, 2)
    c = torch.complex(c[..., 0], c[..., 1])
    past = torch.nn.functional.pad(spec[..., :bins], (0, 0, taps - 1, 0))  # (N, T + taps - 1, bins)
    return sum(c[..., j] * past[:, j: j + t] for j in range(taps))


def export_onnx(model: BandGRU, path: str, lookahead: int = 0) -> None:
    """Streaming ONNX: features (N, T, B), h_in (layers, N, H) -> gains, speech_prob, h_out.

    A model trained with look-ahead (its output at frame t is the gain for frame t - lookahead)
    records it in the metadata, where the runtime reads it.
    """
    model = model.eval()
    n, t = 2, 3
    args = (torch.zeros(n, t, model.n_features), torch.zeros(model.layers, n, model.hidden))
    outputs = ["gains", "speech_prob", "h_out"] + (["df"] if model.df_bins else [])
    axes = {"features": {0: "streams", 1: "frames"}, "h_in": {1: "streams"}, "gains": {0: "streams", 1: "frames"},
            "speech_prob": {0: "streams", 1: "frames"}, "h_out": {1: "streams"}, "df": {0: "streams", 1: "frames"}}
    torch.onnx.export(model, args, path, dynamo=False, opset_version=17, input_names=["features", "h_in"],
                      output_names=outputs, dynamic_axes={k: v for k, v in axes.items() if k != "df" or model.df_bins})
    props = {LOOKAHEAD_KEY: str(int(lookahead))} if lookahead else {}
    if model.df_bins:
        props.update({DF_BINS_KEY: str(model.df_bins), DF_TAPS_KEY: str(model.df_taps)})
    if props:
        import onnx

        proto = onnx.load(path)
        onnx.helper.set_model_props(proto, props)
        onnx.save(proto, path)


def widen_state(state: dict, hidden: int, generator: torch.Generator) -> dict:
    """A trained state dict widened to ``hidden`` GRU units, computing exactly the same function.

    The new units get freshly initialised inputs and recurrences, but nothing they compute reaches the
    old units, the gains or the speech probability yet (those weights are zero): training starts where
    the parent stopped and lets the new units grow in from there.
    """
    old = state["inp.weight"].shape[0]
    if hidden < old:
        raise ValueError(f"cannot narrow a model from {old} to {hidden} units")
    if hidden == old:
        return state
    new = dict(state)
    bound = hidden ** -0.5
    rand = lambda *shape: (torch.rand(*shape, generator=generator) * 2 - 1) * bound  # noqa: E731
    for key in ("inp.weight", "inp_fine.weight"):
        if key in state:
            new[key] = torch.cat([state[key], rand(hidden - old, state[key].shape[1])])
    new["inp.bias"] = torch.cat([state["inp.bias"], torch.zeros(hidden - old)])
    layers = sum(1 for k in state if k.startswith("gru.weight_ih_l"))
    for layer in range(layers):
        for kind in ("ih", "hh"):
            w = state[f"gru.weight_{kind}_l{layer}"]  # (3 * old, old): gates r, z, n stacked
            grown = []
            for g in range(3):
                top = torch.zeros(old, hidden)
                top[:, :old] = w[g * old: (g + 1) * old]  # old units: old inputs only
                grown += [top, rand(hidden - old, hidden)]
            new[f"gru.weight_{kind}_l{layer}"] = torch.cat(grown)
            b = state[f"gru.bias_{kind}_l{layer}"]
            new[f"gru.bias_{kind}_l{layer}"] = torch.cat(
                [torch.cat([b[g * old: (g + 1) * old], torch.zeros(hidden - old)]) for g in range(3)])
    w = state["out.weight"]  # (bands, old + bands): [GRU output | normalised band inputs]
    new["out.weight"] = torch.cat([w[:, :old], torch.zeros(w.shape[0], hidden - old), w[:, old:]], dim=1)
    new["vad.weight"] = torch.cat([state["vad.weight"], torch.zeros(1, hidden - old)], dim=1)
    return new


def count_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


__all__ = ["BandGRU", "Features", "export_onnx", "widen_state", "count_params", "deep_filter", "SR", "HOP", "WIN", "LOOKAHEAD_KEY"]
