"""The fine-tuned MiniLM quality model on GenAI-Bench: time of one fit, and 5-fold out-of-sample routing.

1. One ``CostAwareRouter(quality_model="transformer")`` fit on all 527 prompts x 6 generators
   (USD costs) with the default ``TransformerRegressor`` (wall-clock, this machine's CPU or GPU).
2. ``cross_validate_routing`` with 5 folds, 1 repeat (seed 0) of the transformer against
   MiniLM embeddings + ridge and MiniLM + kNN (the default router), then ``routing_report``:
   APGR, AUC, quality and cost at λ = 0, and the interaction correlation: Pearson r between
   predicted and true quality after removing each prompt's mean over generators and each
   generator's mean over prompts (does the model know *which* generator suits *which*
   prompt, beyond who is best on average?), on the out-of-fold predictions.

The defaults of ``TransformerRegressor`` were fixed before this run; nothing here is tuned on
the test folds. Prints a table and writes ``benchmarks/results/transformer_fit.json``.
Run: ``python benchmarks/transformer_fit.py [--skip-cv]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from _common import to_json  # benchmarks/ is on sys.path when this script runs

from costroute import CostAwareRouter
from costroute.datasets import load_genai_bench
from costroute.evaluation import cross_validate_routing, interaction_r, routing_report
from costroute.quality_models import TransformerRegressor

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cv", action="store_true", help="only time one fit")
    parser.add_argument("--out", type=Path, default=RESULTS / "transformer_fit.json")
    args = parser.parse_args()

    import torch

    data = load_genai_bench(cost_unit="usd")
    prompts, quality = list(data.prompts), data.quality
    defaults = TransformerRegressor().get_params()
    out = {
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
        },
        "dataset": {
            "name": "genai-bench",
            "cost_unit": "usd",
            "n_prompts": len(prompts),
            "generators": list(quality.columns),
        },
        "defaults": {k: v for k, v in defaults.items() if k not in ("progress",)},
    }

    start = time.perf_counter()
    router = CostAwareRouter(data.generators, quality_model="transformer", random_state=0).fit(prompts, quality)
    fit_s = time.perf_counter() - start
    model = router.quality_model_
    out["fit"] = {
        "seconds": fit_s,
        "n_epochs": model.n_epochs_,
        "best_epoch": model.best_epoch_,
        "history": model.history_,
    }
    print(f"one fit on {len(prompts)} prompts: {fit_s:.0f} s ({model.n_epochs_} epochs, best {model.best_epoch_})")
    print(json.dumps(to_json(model.history_)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(to_json(out), indent=2) + "\n")

    if not args.skip_cv:
        routers = {
            "transformer": CostAwareRouter(data.generators, quality_model="transformer", random_state=0),
            "minilm/ridge": CostAwareRouter(data.generators, features="minilm", quality_model="ridge", random_state=0),
            "minilm/knn": CostAwareRouter(data.generators, features="minilm", quality_model="knn", random_state=0),
        }
        start = time.perf_counter()
        result = cross_validate_routing(routers, prompts, quality, cv=5, n_repeats=1, random_state=0, verbose=1)
        cv_s = time.perf_counter() - start
        report = routing_report(result)
        cols = ["quality_mean", "quality_std", "cost_mean", "auc_mean", "apgr_mean", "apgr_std"]
        print(report[cols].to_string(float_format=lambda v: f"{v:.4f}"))
        true = result.true_quality
        inter = {name: interaction_r(preds[0], true) for name, preds in result.oof_predictions.items()}
        fit_times = result.scores.dropna(subset=["fit_time"]).groupby("method")["fit_time"].mean()
        print("interaction r (out of fold):", {k: round(v, 4) for k, v in inter.items()})
        out["cv"] = {
            "cv": 5,
            "n_repeats": 1,
            "random_state": 0,
            "seconds": cv_s,
            "report": {name: {c: report.loc[name, c] for c in report.columns if c != "kind"} for name in report.index},
            "interaction_r": inter,
            "mean_fit_seconds": fit_times.to_dict(),
        }
        args.out.write_text(json.dumps(to_json(out), indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
