"""The training algorithms, one file each; every one is a loop over `rlcore.trainer.Run`."""

from collections.abc import Callable

from rlcore.algos import a2c, ppo, reinforce
from rlcore.run import Run
from rlcore.spec import Algorithm

ALGORITHMS: dict[Algorithm, Callable[[Run], None]] = {
    Algorithm.reinforce: reinforce.train,
    Algorithm.a2c: a2c.train,
    Algorithm.ppo: ppo.train,
}
