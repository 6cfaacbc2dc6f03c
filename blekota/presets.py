"""Tested sets of the training options that decide how fast a model learns: the update rule, its
learning rate, the schedule, random gain and weight averaging (blekota.Trainer's defaults are
PRESETS["default"])."""

PRESETS: dict[str, dict] = {
    # the fastest to a low held-out loss on speech and music (benchmarks/README.md)
    # (schedule None: plateau when there is validation, else constant; ema: the model files hold
    # the weights averaged over about the last 100 iterations, blekota.averaging)
    "default": {"optimizer": "adam", "lr": 4e-3, "schedule": None, "random_gain_db": 4.0, "ema": 0.99},
    # the original NumPy blekota's update rule, learning rate and fixed schedule
    "original": {"optimizer": "rmsprop", "lr": 2e-3, "schedule": "constant", "random_gain_db": 0.0,
                 "ema": 0.0},
    # what the usual PyTorch recipe does (Adam at 2e-3, constant, the windows as recorded)
    "pytorch": {"optimizer": "adam", "lr": 2e-3, "schedule": "constant", "random_gain_db": 0.0, "ema": 0.0},
}
DEFAULTS = PRESETS["default"]
