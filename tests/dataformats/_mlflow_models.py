"""Writes MLflow models with MLflow's own `save_model`, in a child process (run as a script).

`python -m tests.dataformats._mlflow_models DEST` saves, under DEST:
- `pinned/`: a scikit-learn model with the pinned requirements MLflow writes;
- `conda/`: the same with a conda environment using named channels and a channel label;
- `constrained/`: pinned requirements plus a constraints file (`-c constraints.txt`);
- `offsite/`: requirements pointing at a VCS checkout, another index, a URL and a local
  wheel, as a model's author can ask MLflow to record them.
Requirements are given explicitly, so MLflow does not spend half a minute inferring them.
"""

from __future__ import annotations

import sys
from pathlib import Path

OFFSITE = [
    "scikit-learn==1.9.1",
    "git+https://github.com/example/sklearn-extras@main#egg=sklearn-extras",
    "--extra-index-url https://pypi.example.net/simple",
    "helpers @ https://files.example.net/helpers-1.0-py3-none-any.whl",
    "./wheels/local_helper-0.1-py3-none-any.whl",
]


def main(dest: Path) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    pinned = ["scikit-learn==1.9.1", "numpy==2.4.6", "pandas>=2,<4"]
    mlflow.sklearn.save_model(model, str(dest / "pinned"), pip_requirements=pinned)
    mlflow.sklearn.save_model(
        model,
        str(dest / "conda"),
        conda_env={
            "name": "mlflow-env",
            "channels": ["conda-forge", "conda-forge/label/dev"],
            "dependencies": [
                "python=3.11.7",
                "conda-forge::numpy=2.4",
                "pip",
                {"pip": ["mlflow==3.17.2", "scikit-learn==1.9.1"]},
            ],
        },
    )
    constraints = dest / "constraints-src.txt"
    constraints.write_text("numpy<3\n")
    mlflow.sklearn.save_model(
        model, str(dest / "constrained"), pip_requirements=[*pinned, f"-c {constraints}"]
    )
    mlflow.sklearn.save_model(model, str(dest / "offsite"), pip_requirements=OFFSITE)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
