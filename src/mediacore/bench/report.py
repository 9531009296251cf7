"""``OUT/report.md`` and ``OUT/report.html`` from a ``results.json`` dict.

Both carry the same tables (built once, rendered twice).  Figures are PNG
files under ``OUT/figures/`` (linked from the markdown, inlined as base64 in
the HTML); the listening examples are ``OUT/audio/ID/*.wav``, referenced
relatively by ``<audio>`` players.  Nothing is fetched from the network.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_reports", "build_tables", "make_figures", "md_table"]

SR = 48000

# (group, metric, header) of the summary table, as in baseline.md
SUMMARY = [
    ("noisy", "pesq_wb", "PESQ-WB"), ("noisy", "stoi", "STOI"), ("noisy", "estoi", "ESTOI"),
    ("noisy", "si_sdr", "SI-SDR dB"), ("noisy", "SIG", "DNSMOS SIG"), ("noisy", "BAK", "BAK"),
    ("noisy", "OVRL", "OVRL"), ("noisy", "P808", "P.808"),
    ("unreferenced", "SIG", "SIG (no ref.)"), ("unreferenced", "BAK", "BAK (no ref.)"),
    ("unreferenced", "OVRL", "OVRL (no ref.)"), ("unreferenced", "P808", "P.808 (no ref.)"),
    ("clean-only", "pesq_wb", "clean-only PESQ"), ("clean-only", "OVRL", "clean-only OVRL"),
    ("noise-only", "out_dbfs", "noise-only out dBFS"), ("noise-only", "atten_db", "noise-only atten. dB"),
]
CI_METRICS = [("noisy", "pesq_wb"), ("noisy", "stoi"), ("noisy", "si_sdr"), ("noisy", "OVRL"),
              ("unreferenced", "OVRL"), ("clean-only", "pesq_wb"), ("noise-only", "atten_db")]
SNR_METRICS = [("pesq_wb", "PESQ-WB"), ("si_sdr", "SI-SDR dB"), ("OVRL", "DNSMOS OVRL"), ("stoi", "STOI")]
CMP_METRICS = [("noisy", "pesq_wb"), ("noisy", "stoi"), ("noisy", "si_sdr"), ("noisy", "SIG"), ("noisy", "BAK"),
               ("noisy", "OVRL"), ("unreferenced", "OVRL"), ("clean-only", "pesq_wb"), ("noise-only", "atten_db")]


def _fmt(v: Any, fmt: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return fmt.format(v)


def _metric_fmt(results: dict, key: str) -> str:
    from mediacore.bench.runner import METRICS

    return METRICS.get(key, ("", True, "{:.3g}"))[2]


def _mean(sysres: dict, group: str, key: str) -> float | None:
    return sysres.get("aggregate", {}).get(group, {}).get(key, {}).get("mean")


# --------------------------------------------------------------------------- tables


def build_tables(results: dict) -> list[dict]:
    """Tables as ``{"title", "header", "rows", "note"}`` (cells are strings)."""
    systems = results["systems"]
    tables = []
    groups_present = {g for s in systems.values() for g in s.get("aggregate", {})}

    cols = [(g, k, h) for g, k, h in SUMMARY if g in groups_present]
    rows = []
    for name, s in systems.items():
        cells = [name] + [_fmt(_mean(s, g, k), _metric_fmt(results, k)) for g, k, _ in cols]
        cells += [_fmt(s["delay"]["ms"], "{:.1f}"), _fmt(s["cost"]["rtf"], "{:.4f}")]
        rows.append(cells)
    counts = results["corpus"]["counts"]
    tables.append({
        "title": "Quality (means over clips)",
        "header": ["system"] + [h for _, _, h in cols] + ["delay ms", "RTF"],
        "rows": rows,
        "note": (f"Corpus `{results['corpus']['path']}` ({results['corpus']['layout']}): "
                 + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
                 + " clips. Metrics at 16 kHz after delay compensation; PESQ has no value on an all-silent output."),
    })

    ci_cols = [(g, k) for g, k in CI_METRICS if g in groups_present]
    level = results["settings"]["bootstrap"]["level"]
    rows = []
    for name, s in systems.items():
        cells = [name]
        for g, k in ci_cols:
            a = s["aggregate"].get(g, {}).get(k, {})
            f = _metric_fmt(results, k)
            cells.append(f"{_fmt(a.get('mean'), f)} [{_fmt(a.get('ci_low'), f)}, {_fmt(a.get('ci_high'), f)}]")
        rows.append(cells)
    tables.append({
        "title": f"Means with {level:.0%} bootstrap confidence intervals",
        "header": ["system"] + [f"{results['metrics'][k]['label']} ({g})" for g, k in ci_cols],
        "rows": rows,
        "note": (f"Percentile bootstrap of the mean over clips, {results['settings']['bootstrap']['n']} resamples, "
                 f"seed {results['settings']['bootstrap']['seed']}."),
    })

    rows = []
    for name, s in systems.items():
        c, d = s["cost"], s["delay"]
        rows.append([name, c["mode"], _fmt(c["rtf"], "{:.4f}"), _fmt(c["streams_per_core"], "{:.0f}"),
                     _fmt(c["frame_ms_p50"], "{:.3f}"), _fmt(c["frame_ms_p99"], "{:.3f}"),
                     _fmt(d["ms"], "{:.1f}"), _fmt(d["declared_ms"], "{:.1f}"), _fmt(d["spread_ms"], "{:.1f}")])
    tables.append({
        "title": "Cost and delay",
        "header": ["system", "mode", "RTF", "streams / core", "frame p50 ms", "frame p99 ms",
                   "measured delay ms", "declared ms", "lag spread ms"],
        "rows": rows,
        "note": ("RTF = processing time / audio time, one thread, one clip at a time; streams / core = 1 / RTF. "
                 "Frame times: one `process` call per 10 ms (480-sample) frame, all frames of all clips "
                 "(`whole`: a whole-clip call, no per-frame figure; `external`: processed elsewhere). "
                 "Measured delay: median cross-correlation lag over speech clips, compensated before scoring "
                 "(external systems: per clip)."),
    })

    snrs = []
    for s in systems.values():
        for k in s.get("per_snr", {}):
            if k not in snrs:
                snrs.append(k)
    snrs.sort(key=float)
    if snrs:
        rows = []
        for name, s in systems.items():
            cells = [name]
            for snr in snrs:
                r = s["per_snr"].get(snr, {})
                cells.append(" / ".join(_fmt(r.get(k, {}).get("mean"), _metric_fmt(results, k))
                                        for k in ("pesq_wb", "si_sdr", "OVRL")))
            rows.append(cells)
        tables.append({"title": "Per input SNR (noisy clips): PESQ-WB / SI-SDR dB / DNSMOS OVRL",
                       "header": ["system"] + [f"{snr} dB" for snr in snrs], "rows": rows, "note": ""})

    cmps = results.get("comparisons", [])
    if cmps:
        cols = [(g, k) for g, k in CMP_METRICS if any(c["group"] == g and c["metric"] == k for c in cmps)]
        pairs = list(dict.fromkeys((c["a"], c["b"]) for c in cmps))
        index = {(c["a"], c["b"], c["group"], c["metric"]): c for c in cmps}
        rows = []
        for a, b in pairs:
            cells = [f"{a} vs {b}"]
            for g, k in cols:
                c = index.get((a, b, g, k))
                if c is None or c["mean_diff"] is None:
                    cells.append("–")
                    continue
                who = {"a": a, "b": b}.get(c["winner"] or "", "tie")
                cells.append(f"{_fmt(c['mean_diff'], '{:+.3g}')} {who}")
            rows.append(cells)
        tables.append({
            "title": "Paired comparisons: mean difference (A − B) and who wins",
            "header": ["A vs B"] + [f"{results['metrics'][k]['label']} ({g})" for g, k in cols],
            "rows": rows,
            "note": (f"A system wins when the {level:.0%} paired-bootstrap confidence interval of the per-clip "
                     "difference lies entirely on its better side of 0 (lower is better for out dBFS); otherwise "
                     "`tie`. Wilcoxon signed-rank p-values are in results.json (`comparisons`)."),
        })
    return tables


def md_table(t: dict) -> str:
    lines = [f"### {t['title']}", "", "| " + " | ".join(t["header"]) + " |",
             "|---|" + "---:|" * (len(t["header"]) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in t["rows"]]
    if t["note"]:
        lines += ["", t["note"]]
    return "\n".join(lines)


def _html_table(t: dict) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t["header"])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in t["rows"])
    note = f"<p class='note'>{html.escape(t['note'])}</p>" if t["note"] else ""
    return f"<h3>{html.escape(t['title'])}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


# --------------------------------------------------------------------------- figures


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def make_figures(results: dict, out: Path) -> list[tuple[str, str]]:
    """Write the PNGs under ``out/figures``; returns ``[(relative path, caption)]``."""
    plt = _plt()
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    figs: list[tuple[str, str]] = []
    systems = results["systems"]

    snrs = sorted({float(k) for s in systems.values() for k in s.get("per_snr", {})})
    if snrs:
        fig, axes = plt.subplots(1, len(SNR_METRICS), figsize=(4.2 * len(SNR_METRICS), 3.6))
        for ax, (k, label) in zip(axes, SNR_METRICS):
            for name, s in systems.items():
                xs, ys, lo, hi = [], [], [], []
                for snr in snrs:
                    r = s["per_snr"].get(f"{snr:g}", {}).get(k, {})
                    if r.get("mean") is None:
                        continue
                    xs.append(snr)
                    ys.append(r["mean"])
                    lo.append(r["ci_low"] if r.get("ci_low") is not None else r["mean"])
                    hi.append(r["ci_high"] if r.get("ci_high") is not None else r["mean"])
                if xs:
                    line, = ax.plot(xs, ys, marker="o", label=name)
                    ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.12)
            ax.set_xlabel("input SNR (dB)")
            ax.set_title(label)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(figdir / "per_snr.png", dpi=90)
        plt.close(fig)
        figs.append(("figures/per_snr.png", "Quality per input SNR (mean, 95 % bootstrap band)"))

    group = "noisy" if any("noisy" in s["aggregate"] for s in systems.values()) else "unreferenced"
    panels = [("pesq_wb", "PESQ-WB"), ("OVRL", "DNSMOS OVRL")] if group == "noisy" else [("OVRL", "DNSMOS OVRL")]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    for ax, (k, label) in zip(axes[0], panels):
        for name, s in systems.items():
            rtf = s["cost"]["rtf"]
            m = _mean(s, group, k)
            if m is None or rtf is None:
                continue
            x = max(rtf, 1e-5)
            ax.scatter([x], [m], s=40)
            ax.annotate(name, (x, m), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("real-time factor (one thread, log scale)")
        ax.set_ylabel(label)
        ax.set_title(f"{label} vs cost")
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(figdir / "quality_cost.png", dpi=90)
    plt.close(fig)
    figs.append(("figures/quality_cost.png", "Quality versus cost (systems without a measured RTF are left out)"))

    import soundfile as sf

    for cid in results.get("audio", []):
        d = out / "audio" / _safe(cid)
        tracks = [("noisy", d / "noisy.wav"), ("clean", d / "clean.wav")]
        tracks += [(n, d / f"{_safe(n)}.wav") for n in systems if n != "noisy"]
        tracks = [(n, p) for n, p in tracks if p.is_file()]
        if not tracks:
            continue
        fig, axes = plt.subplots(len(tracks), 1, figsize=(8, 1.6 * len(tracks)), sharex=True, squeeze=False)
        for ax, (n, p) in zip(axes[:, 0], tracks):
            x, sr = sf.read(str(p), dtype="float64")
            # -130 dB dither: digital silence is drawn as the colour floor, not as blank (log of 0)
            x = x + 3e-7 * np.random.default_rng(0).standard_normal(x.size)
            ax.specgram(x, NFFT=1024, Fs=sr, noverlap=512, cmap="magma", vmin=-130, vmax=-20)
            ax.set_ylim(0, 12000)
            ax.set_ylabel("Hz")
            ax.set_title(n, fontsize=9, loc="left")
        axes[-1, 0].set_xlabel("s")
        fig.tight_layout()
        rel = f"figures/spec_{_safe(cid)}.png"
        fig.savefig(out / rel, dpi=80)
        plt.close(fig)
        figs.append((rel, f"Spectrograms, clip {cid} (0-12 kHz)"))
    return figs


def _safe(name: str) -> str:
    from mediacore.bench.runner import _safe as s

    return s(name)


# --------------------------------------------------------------------------- documents


def _audio_section(results: dict, out: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(clip caption, [(label, relative wav path)])]`` for the clips with audio."""
    sections = []
    for cid in results.get("audio", []):
        d = out / "audio" / _safe(cid)
        names = ["noisy", "clean"] + [n for n in results["systems"] if n != "noisy"]
        items = [(n, f"audio/{_safe(cid)}/{_safe(n)}.wav") for n in names if (d / f"{_safe(n)}.wav").is_file()]
        if items:
            snr = next((s["clips"][cid].get("snr_db") for s in results["systems"].values()
                        if cid in s["clips"]), None)
            sections.append((f"{cid}" + ("" if snr is None else f" (input SNR {snr:g} dB)"), items))
    return sections


def _header_lines(results: dict) -> list[str]:
    env = results["environment"]
    vers = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v != "not installed")
    return [f"Created {results['created']}; wall time {results['wall_s']:.0f} s; jobs {results['settings']['jobs']}.",
            f"CPU: {env['cpu']} ({env['cpu_count']} cores); python {env['python']}; {vers}."]


def write_reports(results: dict, out: str | Path) -> None:
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` under ``out``."""
    out = Path(out)
    tables = build_tables(results)
    figs = make_figures(results, out)
    audio = _audio_section(results, out)
    systems_desc = [f"`{n}`: {s['description']}" for n, s in results["systems"].items()]

    md = ["# Noise-suppression benchmark", ""] + _header_lines(results) + [""]
    md += ["Systems: " + "; ".join(systems_desc) + ".", ""]
    for t in tables:
        md += [md_table(t), ""]
    md += ["## Figures", ""]
    md += [f"![{cap}]({rel})\n\n{cap}\n" for rel, cap in figs]
    if audio:
        md += ["## Listening", "", "Aligned outputs (48 kHz, 16-bit WAV):", ""]
        for cap, items in audio:
            md.append(f"- {cap}: " + ", ".join(f"[{n}]({p})" for n, p in items))
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")

    css = ("body{font-family:sans-serif;margin:1.5em;max-width:1400px}table{border-collapse:collapse;"
           "margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}td{text-align:right}"
           "td:first-child{text-align:left}th{background:#eee}.note{font-size:12px;color:#444;max-width:1100px}"
           "figure{margin:1em 0}figcaption{font-size:12px;color:#444}.players td{text-align:left}"
           "audio{width:260px}img{max-width:100%;height:auto}")
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<title>Noise-suppression benchmark</title>", f"<style>{css}</style></head><body>",
             "<h1>Noise-suppression benchmark</h1>"]
    parts += [f"<p>{html.escape(line)}</p>" for line in _header_lines(results)]
    parts.append("<p>Systems:</p><ul>" + "".join(
        f"<li><b>{html.escape(n)}</b>: {html.escape(s['description'])}</li>"
        for n, s in results["systems"].items()) + "</ul>")
    parts += [_html_table(t) for t in tables]
    parts.append("<h2>Figures</h2>")
    for rel, cap in figs:
        data = base64.b64encode((out / rel).read_bytes()).decode("ascii")
        parts.append(f"<figure><img alt='{html.escape(cap)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(cap)}</figcaption></figure>")
    if audio:
        parts.append("<h2>Listening</h2><p class='note'>Aligned outputs, 48 kHz 16-bit WAV, files under audio/.</p>")
        for cap, items in audio:
            cells = "".join(f"<td><div>{html.escape(n)}</div><audio controls preload='metadata' "
                            f"src='{html.escape(p)}'></audio></td>" for n, p in items)
            parts.append(f"<h3>{html.escape(cap)}</h3><table class='players'><tr>{cells}</tr></table>")
    parts.append("</body></html>")
    (out / "report.html").write_text("\n".join(parts) + "\n", encoding="utf-8")
