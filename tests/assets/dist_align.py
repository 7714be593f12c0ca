"""Run `selfalign align` under accelerate and write each rank's final trainable weights checksum and how and when
it loaded the model."""
import json
import os
import sys

import torch

import selfalign.stages.align as align

seen = {}
orig = align._save


def _capture(trainer, *args, **kwargs):
    seen["model"] = trainer.model
    return orig(trainer, *args, **kwargs)


align._save = _capture
orig_train = None
loads = []  # every model load on this rank: was the process group there already, and where did the weights go


def _record_loads():
    import selfalign.models as models

    real = models.load

    def load(*a, **k):
        ready = torch.distributed.is_available() and torch.distributed.is_initialized()
        model, tok = real(*a, **k)
        loads.append({"process_group": ready, "world": torch.distributed.get_world_size() if ready else 1,
                      "device": str(next(model.parameters()).device), "requested": k.get("device"),
                      "pid": os.getpid(), "params": sum(p.numel() for p in model.parameters())})
        return model, tok

    models.load = load


def main():
    from transformers import Trainer

    real_train = Trainer.train

    def train(self, *a, **k):
        res = real_train(self, *a, **k)
        params = {n: p.detach().double() for n, p in self.model.named_parameters() if p.requires_grad}
        rank = int(os.environ.get("RANK", 0))
        out = sys.argv[sys.argv.index("--output") + 1]
        with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
            json.dump({"rank": rank, "world": int(os.environ.get("WORLD_SIZE", 1)), "n": len(params), "loads": loads,
                       "sum": float(sum(p.sum() for p in params.values())),
                       "abs": float(sum(p.abs().sum() for p in params.values()))}, f)
        return res

    Trainer.train = train
    _record_loads()
    from selfalign.cli import main as cli_main

    torch.set_num_threads(1)
    sys.exit(cli_main(["align", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
