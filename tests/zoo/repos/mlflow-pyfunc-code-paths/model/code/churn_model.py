import pickle

import joblib
import mlflow.pyfunc


class ChurnModel(mlflow.pyfunc.PythonModel):
    """The MLflow docs' custom model with artifacts: load_context unpickles what was saved."""

    def load_context(self, context):
        self.model = joblib.load(context.artifacts["model"])
        with open(context.artifacts["scaler"], "rb") as f:
            self.scaler = pickle.load(f)

    def predict(self, context, model_input, params=None):
        return self.model.predict(self.scaler.transform(model_input))
