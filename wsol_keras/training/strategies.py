"""tf.distribute strategies for wsol-train, and which process writes the workdir.

One machine: the default strategy or MirroredStrategy over the local GPUs (or
logical CPUs); several machines: MultiWorkerMirroredStrategy from TF_CONFIG,
where only the chief writes (TensorFlow's multi-worker convention).
"""

import tensorflow as tf


def make_strategy(name, cpu_replicas=0):
    """Returns a tf.distribute strategy.

    Args:
        name: "default" (one device), "mirrored" (all local GPUs, or the logical
            CPUs) or "multiworker" (MultiWorkerMirroredStrategy from TF_CONFIG).
        cpu_replicas: if > 0, split the CPU into this many logical devices first
            (to exercise MirroredStrategy without GPUs); must run before TF starts.
    """
    if cpu_replicas:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * cpu_replicas
        )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = (
            None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
        )
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(
        f"--strategy={name!r}: expected default, mirrored or " "multiworker"
    )


def is_chief(strategy):
    """Whether this process writes the workdir (TensorFlow's multi-worker rule).

    The task "chief", or worker 0 of a cluster without one; every process of
    a single-machine strategy.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver else {}
    if not cluster or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and (
        "chief" not in cluster
    )
