"""The launch files under deploy/ run torchrun with the c10d rendezvous on `mmscale.cli train`, with a
job that loads: the Slurm script run against stand-in srun and scontrol, the TrainJob read as YAML."""

import os
import subprocess
from pathlib import Path

import yaml
from torch.distributed.run import get_args_parser

from mmscale.cli import build_parser, parse
from mmscale.config.load import load_config
from mmscale.train import TrainJob

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def check_train_command(torchrun_argv: list[str]):
    """torchrun's own parser over the arguments, then mmscale's over what it runs; the job loads."""
    launch = get_args_parser().parse_args(torchrun_argv)
    assert launch.module and launch.training_script == "mmscale.cli"
    args = parse(build_parser(), launch.training_script_args)
    assert args.command == "train"
    load_config(TrainJob, preset=args.preset, file=args.config, overrides=args.overrides)
    return launch, args


def test_the_slurm_script_runs_one_torchrun_agent_per_node_on_the_head_node_rendezvous(tmp_path):
    script = DEPLOY / "slurm" / "train.sbatch"
    subprocess.run(["bash", "-n", str(script)], check=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text("#!/bin/sh\nprintf 'gpu-07\\ngpu-08\\n'\n")
    (bin_dir / "srun").write_text(f"#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {tmp_path}/srun\n")
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SLURM_JOB_NODELIST="gpu-[07-08]",
               SLURM_JOB_NUM_NODES="2", SLURM_JOB_ID="4242", SLURM_GPUS_ON_NODE="8")
    subprocess.run(["bash", str(script), "--preset", "tiny", "data.path=/shared/data", "train.out_dir=/shared/run"],
                   env=env, check=True)
    argv = (tmp_path / "srun").read_text().splitlines()
    assert argv[argv.index("torchrun") - 1].startswith("--kill-on-bad-exit")  # srun's own flags come first
    launch, args = check_train_command(argv[argv.index("torchrun") + 1:])
    assert (launch.nnodes, launch.nproc_per_node, launch.rdzv_backend) == ("2", "8", "c10d")
    assert launch.rdzv_endpoint == "gpu-07:29500" and launch.rdzv_id == "4242"
    assert args.preset == "tiny" and "train.out_dir=/shared/run" in args.overrides


def test_the_trainjob_runs_torchrun_on_the_train_command_with_a_shared_volume():
    manifest = yaml.safe_load((DEPLOY / "k8s" / "trainjob.yaml").read_text())
    assert manifest["apiVersion"] == "trainer.kubeflow.org/v1alpha1" and manifest["kind"] == "TrainJob"
    assert manifest["spec"]["runtimeRef"]["name"] == "torch-distributed"
    trainer = manifest["spec"]["trainer"]
    assert trainer["numNodes"] >= 2 and trainer["command"][0] == "torchrun"
    _, args = check_train_command(trainer["command"][1:])
    out_dir = next(o.split("=", 1)[1] for o in args.overrides if o.startswith("train.out_dir="))
    pod = manifest["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]
    mounts = pod["template"]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert any(out_dir.startswith(mount["mountPath"] + "/") for mount in mounts)  # every node sees the run folder
