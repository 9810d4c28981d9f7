"""Classes other libraries pickle as their saved form are quiet; their loaders and the names
around them are not."""

from __future__ import annotations

import pytest

from tests.pickle._pickle_corpus import critical, scan, warnings_of

_SAVED_FORMS = [
    ("nltk.tokenize.punkt", "PunktSentenceTokenizer"),
    ("nltk.tokenize.punkt", "PunktParameters"),
    ("stable_baselines3.common.vec_env.vec_normalize", "VecNormalize"),
    ("gymnasium.spaces.box", "Box"),
    ("stable_baselines3.common.utils", "FloatSchedule"),
    ("stable_baselines3.dqn.policies", "DQNPolicy"),
    ("pmdarima.arima.arima", "ARIMA"),
    ("setfit.modeling", "SetFitHead"),
    ("statsmodels.tsa.statespace._representation", "sStatespace"),
    ("statsmodels.tsa.statespace._kalman_filter", "zKalmanFilter"),
    ("deepspeed.runtime.fp16.loss_scaler", "LossScaler"),
    ("deepspeed.utils.tensor_fragment", "fragment_address"),
    ("torchao.quantization", "Int8Tensor"),
    ("torchao.dtypes.affine_quantized_tensor", "AffineQuantizedTensor"),
    ("torchao.quantization.quant_primitives", "MappingType"),
    ("nltk.tag.sequential", "BigramTagger"),
    ("nltk.tag.sequential", "DefaultTagger"),
    ("nltk.classify.naivebayes", "NaiveBayesClassifier"),
    ("nltk.classify.decisiontree", "DecisionTreeClassifier"),
    ("nltk.probability", "FreqDist"),
    ("nltk.probability", "ELEProbDist"),
    ("river.tree.hoeffding_tree_classifier", "HoeffdingTreeClassifier"),
    ("river.tree.nodes.htc_nodes", "LeafNaiveBayesAdaptive"),
    ("river.compose.pipeline", "Pipeline"),
    ("river.preprocessing.scale", "StandardScaler"),
    ("river.optim.losses", "Log"),
    ("river._river_rust.vectordict", "VectorDict"),
]


@pytest.mark.parametrize(("module", "name"), _SAVED_FORMS)
def test_classes_libraries_save_are_quiet(module: str, name: str) -> None:
    """NLTK's punkt pickle, stable-baselines3's vec_normalize.pkl, pmdarima's and statsmodels'
    fitted models, SetFit's torch head: `cls.__new__` and a state dict, as they pickle."""
    data = b"\x80\x02c%s\n%s\n)\x81}(X\x01\x00\x00\x00aK\x01ub." % (module.encode(), name.encode())
    result, _ = scan(data)
    assert critical(result) == [] and warnings_of(result) == [], result.issues


@pytest.mark.parametrize(
    "data",
    [
        # a vouched class whose state holds a call
        b"\x80\x02cnltk.tokenize.punkt\nPunktSentenceTokenizer\n)\x81}(X\x01\x00\x00\x00a"
        b"cos\nsystem\n(S'id'\ntRub.",
        b"cnltk.data\nload\n(S'tokenizers/punkt/evil.pickle'\ntR.",
        b"cstatsmodels.iolib.smpickle\nload_pickle\n(S'/tmp/evil.pkl'\ntR.",
        b"cstatsmodels.tsa.statespace._tools\nsSystem\n(S'id'\ntR.",
        b"ctorchao.quantization\nInt8Tensor.__init_subclass__\n)R.",
        b"\x80\x02cnltk.tag.sequential\nUnigramTagger\n)\x81}(X\x01\x00\x00\x00a"
        b"cos\nsystem\n(S'id'\ntRub.",
        # river's VectorDict calls its default factory on a missing key
        b"criver._river_rust.vectordict\nVectorDict\n(}cos\nsystem\nNI01\ntR.",
    ],
)
def test_loaders_and_calls_beside_those_classes_are_critical(data: bytes) -> None:
    result, _ = scan(data)
    assert critical(result), result.issues


@pytest.mark.parametrize(
    "data",
    [
        # PunktTokenizer reads its parameters from files; gym.make imports an entry point
        b"cnltk.tokenize.punkt\nPunktTokenizer\n(S'english'\ntR.",
        b"cgymnasium.envs.registration\nmake\n(S'evil:Env'\ntR.",
        b"cstable_baselines3.common.save_util\nload_from_pkl\n(S'/tmp/evil.pkl'\ntR.",
        # an algorithm built from an env id makes the env (gym.make imports its entry point)
        b"cstable_baselines3.ppo.ppo\nPPO\n(S'MlpPolicy'\nS'evil:Env-v0'\ntR.",
        # the typed-class exception covers statsmodels' Cython modules only
        b"cstatsmodels.tsa.statespace\nsStatespace\n)R.",
        b"cstatsmodels.tsa.statespace._representation\nsstatespace\n)R.",
        # DeepSpeed: its checkpoint loaders and engines are not its saved classes
        b"cdeepspeed.runtime.engine\nDeepSpeedEngine\n(NtR.",
        b"cdeepspeed.utils.zero_to_fp32\nget_fp32_state_dict_from_zero_checkpoint\n(S'/x'\ntR.",
        # torchao: functions, export helpers and prototypes are not its saved classes
        b"ctorchao.quantization\nquantize_\n(NNtR.",
        b"ctorchao.quantization.pt2e.export_utils\nWrapperModule\n(NtR.",
        b"ctorchao.prototype.autoround.core\nAutoRoundConfig\n)R.",
        # NLTK: the data loader and the ProbDist that calls the factory it is given
        b"cnltk.data\nload\n(S'taggers/evil.pickle'\ntR.",
        b"cnltk.probability\nConditionalProbDist\n(NNtR.",
        # river: its stream readers open files, its datasets download
        b"criver.stream\niter_csv\n(S'/etc/passwd'\ntR.",
        b"criver.datasets.base\nRemoteDataset\n(S'http://x/y'\ntR.",
    ],
)
def test_neighbours_of_those_classes_are_not_vouched(data: bytes) -> None:
    result, _ = scan(data)
    assert critical(result) or warnings_of(result), result.issues
