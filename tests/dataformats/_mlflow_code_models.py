"""Writes MLflow models that ship Python, with MLflow's own `save_model`, in a child process.

`python -m tests.dataformats._mlflow_code_models DEST` saves, under DEST:
- `loader/`: `mlflow.pyfunc.save_model(loader_module=..., code_paths=[...])`, the loader module
  shipped in the model's `code/` directory;
- `pythonmodel/`: a `PythonModel` subclass defined in a file passed as `code_paths` (the pickle
  names the class; the class comes from `code/`);
- `fromcode/`: a model from code (`python_model="model.py"`);
- `artifacts/`: MLflow's documented custom model: a `PythonModel` from `code_paths` whose
  `load_context` unpickles the `artifacts` saved with it (joblib and pickle), left harmless;
- `sklearn/` and `pytorch/`: plain models saved by their flavors.
MLflow imports the code it is given while saving (a model from code is run to find the model),
so every model is saved from harmless files, and the copies MLflow made in the model's folder
are then overwritten with `HOSTILE_*`, which run a command once loaded. Nothing here ever loads a
model, and the hostile files are never imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

HARMLESS_LOADER = "def _load_pyfunc(path):\n    return None\n"
HOSTILE_LOADER = "import os\n\n\ndef _load_pyfunc(path):\n    os.system('id')\n    return None\n"
HARMLESS_MODEL = """import mlflow.pyfunc


class ShippedModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input
"""
HOSTILE_MODEL = """import os

import mlflow.pyfunc


class ShippedModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        os.system("id")

    def predict(self, context, model_input, params=None):
        return model_input
"""
HARMLESS_FROM_CODE = """import mlflow
from mlflow.models import set_model


class FromCode(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


set_model(FromCode())
"""
ARTIFACTS_MODEL = """import pickle

import joblib
import mlflow.pyfunc


class ChurnModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.model = joblib.load(context.artifacts["model"])
        with open(context.artifacts["encoder"], "rb") as f:
            self.encoder = pickle.load(f)

    def predict(self, context, model_input, params=None):
        return self.model.predict(self.encoder.transform(model_input))
"""
HOSTILE_FROM_CODE = HARMLESS_FROM_CODE.replace("import mlflow\n", "import os\n\nimport mlflow\n")
HOSTILE_FROM_CODE = HOSTILE_FROM_CODE.replace(
    "    def predict",
    "    def load_context(self, context):\n        os.system('id')\n\n    def predict",
)


def main(dest: Path) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import mlflow.pyfunc

    src = dest / "src"
    src.mkdir()
    (src / "shipped_loader.py").write_text(HARMLESS_LOADER)
    (src / "shipped_model.py").write_text(HARMLESS_MODEL)
    (src / "from_code.py").write_text(HARMLESS_FROM_CODE)
    reqs = ["mlflow==3.17.2"]
    mlflow.pyfunc.save_model(
        str(dest / "loader"),
        loader_module="shipped_loader",
        code_paths=[str(src / "shipped_loader.py")],
        pip_requirements=reqs,
    )
    sys.path.insert(0, str(src))
    from shipped_model import ShippedModel  # the harmless copy written above

    mlflow.pyfunc.save_model(
        str(dest / "pythonmodel"),
        python_model=ShippedModel(),
        code_paths=[str(src / "shipped_model.py")],
        pip_requirements=reqs,
    )
    mlflow.pyfunc.save_model(
        str(dest / "fromcode"), python_model=str(src / "from_code.py"), pip_requirements=reqs
    )
    (src / "churn_model.py").write_text(ARTIFACTS_MODEL)
    import pickle

    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    joblib.dump(LogisticRegression().fit(x, [0, 0, 1, 1]), src / "model.joblib")
    (src / "encoder.pkl").write_bytes(pickle.dumps(StandardScaler().fit(x)))
    from churn_model import ChurnModel

    mlflow.pyfunc.save_model(
        str(dest / "artifacts"),
        python_model=ChurnModel(),
        artifacts={"model": str(src / "model.joblib"), "encoder": str(src / "encoder.pkl")},
        code_paths=[str(src / "churn_model.py")],
        pip_requirements=reqs,
    )
    (dest / "loader" / "code" / "shipped_loader.py").write_text(HOSTILE_LOADER)
    (dest / "pythonmodel" / "code" / "shipped_model.py").write_text(HOSTILE_MODEL)
    (dest / "fromcode" / "from_code.py").write_text(HOSTILE_FROM_CODE)

    import mlflow.pytorch
    import mlflow.sklearn
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    mlflow.sklearn.save_model(
        model, str(dest / "sklearn"), pip_requirements=["scikit-learn==1.9.1", "numpy==2.4.6"]
    )
    net = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.ReLU())
    mlflow.pytorch.save_model(
        net,
        str(dest / "pytorch"),
        input_example=np.zeros((1, 4), dtype=np.float32),
        pip_requirements=["torch"],
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
