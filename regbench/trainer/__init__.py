"""Population-first training and the hook points regularizers implement."""
from regbench.trainer.hooks import NotApplicable, Params, Regularizer, TrainSet
from regbench.trainer.loop import TrainerSettings, TrainResult, train_population
from regbench.trainer.streams import Streams, derive_seed

__all__ = ["NotApplicable", "Params", "Regularizer", "TrainSet", "TrainerSettings", "TrainResult", "train_population",
           "Streams", "derive_seed"]
