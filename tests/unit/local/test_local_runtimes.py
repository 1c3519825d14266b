"""Runtimes: which functions run, on which interpreter, with which packages, from which folder."""

from __future__ import annotations

import fnmatch
import os
import shutil
import socket
import stat
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from lambdacast_local import cli
from lambdacast_local.app_loading import load_app
from lambdacast_local.errors import LocalError, TemplateError
from lambdacast_local.model import Function, Layer
from lambdacast_local.runtimes import Installer, prepare
from lambdacast_local.runtimes import interpreters as interpreters_module
from lambdacast_local.runtimes.artifacts import find_artifact, foreign_binary, foreign_wheel
from lambdacast_local.runtimes.cache import NotPrepared
from lambdacast_local.runtimes.interpreters import find_python
from lambdacast_local.runtimes.node import NodeRuntime
from lambdacast_local.runtimes.python import PythonRuntime
from lambdacast_local.runtimes.worker import redirect_hosts

CURRENT = f"{sys.version_info.major}.{sys.version_info.minor}"
ROOT = Path(__file__).resolve().parents[3]

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::WebSocketApi
    Properties:
      RouteSelectionExpression: $request.body.action
      StageName: dev
      Routes:
        $default:
          FunctionArn: !GetAtt Fn.Arn
  Fn:
    Type: AWS::Serverless::Function
    Properties:
{properties}
"""


class Lines(list[str]):
    """A log that keeps its lines."""

    def __call__(self, line: str) -> None:
        self.append(line)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LAMBDACAST_CACHE_DIR", str(folder))
    return folder


def write_template(tmp_path: Path, properties: str) -> Path:
    path = tmp_path / "template.yaml"
    indented = "\n".join(f"      {line}" for line in properties.strip().splitlines())
    path.write_text(TEMPLATE.format(properties=indented))
    (tmp_path / "src").mkdir(exist_ok=True)
    return path


# --- Which functions run ---------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ["nodejs18.x", "nodejs20.x", "nodejs22.x", "python3.9", "python3.13"])
def test_python_and_node_functions_are_runnable(tmp_path, runtime):
    # WHEN a template's function declares a Python or Node.js 18+ runtime
    app = load_app(write_template(tmp_path, f"CodeUri: src/\nHandler: app.handler\nRuntime: {runtime}"))
    # THEN the route reaches it, with that runtime
    assert app.functions["Fn"].runtime == runtime


@pytest.mark.parametrize(
    "runtime", ["java21", "go1.x", "dotnet8", "ruby3.3", "provided.al2023", "nodejs16.x"]
)
def test_other_runtimes_are_refused_in_one_sentence_naming_resource_and_runtime(tmp_path, runtime):
    # GIVEN a route whose function runs a runtime the emulator cannot run
    template = write_template(tmp_path, f"CodeUri: src/\nHandler: app.handler\nRuntime: {runtime}")
    # WHEN the template is read
    with pytest.raises(TemplateError) as refused:
        load_app(template)
    # THEN one sentence names the function and its runtime
    message = str(refused.value)
    assert f"targets function Fn, whose runtime {runtime} lambdacast local cannot run" in message
    assert message.count(".") >= 1
    assert "\n" not in message


def test_a_refused_runtime_exits_with_status_2(tmp_path, capsys):
    template = write_template(tmp_path, "CodeUri: src/\nHandler: App::Handler\nRuntime: java21")
    # WHEN lambdacast local is asked to serve it
    status = cli.main(["local", "--template", str(template), "--port", "0", "--no-web"])
    # THEN it exits with status 2 and one line naming the function and the runtime
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.startswith("lambdacast: Resource ")
    assert "function Fn, whose runtime java21" in err
    assert len(err.splitlines()) == 1


def test_container_image_functions_are_refused(tmp_path):
    template = write_template(
        tmp_path, "PackageType: Image\nImageUri: 123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"
    )
    with pytest.raises(
        TemplateError, match=r"function Fn, which is a container image \(PackageType: Image\)"
    ):
        load_app(template)


def test_a_layers_build_method_survives_the_sam_transform(tmp_path):
    # GIVEN a layer built with BuildMethod python3.12 (the transform renames it and drops its Metadata)
    template = write_template(
        tmp_path, "CodeUri: src/\nHandler: app.handler\nRuntime: python3.12\nLayers: [!Ref Deps]"
    )
    (tmp_path / "deps").mkdir()
    text = template.read_text() + (
        "  Deps:\n    Type: AWS::Serverless::LayerVersion\n    Properties:\n      ContentUri: deps/\n"
        "    Metadata:\n      BuildMethod: python3.12\n"
    )
    template.write_text(text)
    # WHEN the template is read
    layer = load_app(template).functions["Fn"].layers[0]
    # THEN the layer keeps its original logical id (sam build's folder name) and its build method
    assert layer == Layer("Deps", tmp_path / "deps", "python3.12")


# --- Interpreters --------------------------------------------------------------------------------------


def fake_python(folder: Path, version: str) -> Path:
    """An executable that answers the version probe as Python ``version`` would."""
    folder.mkdir(parents=True)
    path = folder / f"python{version}"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def no_interpreters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine with no pyenv, no uv and an empty PATH (find_python's memo cleared around the test)."""
    root = tmp_path / "machine"
    monkeypatch.setenv("PYENV_ROOT", str(root / "pyenv"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(root / "uv"))
    monkeypatch.setenv("PATH", str(root / "bin"))
    find_python.cache_clear()
    yield root
    find_python.cache_clear()


def test_pyenv_versions_are_found_newest_patch_first(no_interpreters):
    # GIVEN pyenv versions 3.77.1 and 3.77.10 (3.77 is no real Python: the emulator's own never matches)
    fake_python(no_interpreters / "pyenv" / "versions" / "3.77.1" / "bin", "3.77")
    newest = fake_python(no_interpreters / "pyenv" / "versions" / "3.77.10" / "bin", "3.77")
    # WHEN Python 3.77 is looked for
    found = find_python("3.77")
    # THEN the newest patch release is chosen
    assert found is not None
    assert found.path == newest
    assert found.tag == "cp377"


def test_uv_managed_and_path_interpreters_are_found_but_not_pyenv_shims(no_interpreters, monkeypatch):
    # GIVEN a python3.78 only among pyenv's shims, and a uv-managed 3.79
    fake_python(no_interpreters / "shims", "3.78")
    uv = fake_python(no_interpreters / "uv" / "cpython-3.79.2-linux-x86_64-gnu" / "bin", "3.79")
    monkeypatch.setenv(
        "PATH", os.pathsep.join([str(no_interpreters / "shims"), str(no_interpreters / "bin")])
    )
    # THEN the shim is not taken (it fails unless pyenv selects that version), the uv one is
    assert find_python("3.78") is None
    assert find_python("3.79").path == uv
    # AND a python3.80 on PATH is found
    on_path = fake_python(no_interpreters / "bin", "3.80")
    assert find_python("3.80").path == on_path


def test_a_candidate_that_is_not_the_version_it_claims_is_skipped(no_interpreters):
    # GIVEN a pyenv folder 3.81.0 whose python3.81 answers 3.82
    liar = fake_python(no_interpreters / "pyenv" / "versions" / "3.81.0" / "bin", "3.82")
    liar.rename(liar.with_name("python3.81"))
    # THEN no Python 3.81 is found
    assert find_python("3.81") is None


def test_a_missing_interpreter_runs_on_the_current_one_with_one_loud_warning(
    no_interpreters, tmp_path, cache
):
    # GIVEN two python3.77 functions on a machine without Python 3.77
    log = Lines()
    runtime = PythonRuntime(Installer(install=False, log=log), tmp_path)
    functions = [Function(name, name, tmp_path, "app.handler", runtime="python3.77") for name in ("A", "B")]
    # WHEN their runtime is prepared
    launches = [runtime.launch(function) for function in functions]
    # THEN both run on the emulator's own interpreter, and one warning line names both versions
    assert all(launch.argv[0] == str(interpreters_module.current_python().path) for launch in launches)
    warnings = [line for line in log if line.startswith("WARNING")]
    assert len(warnings) == 1
    assert "no Python 3.77 on this machine" in warnings[0]
    assert f"run on Python {CURRENT}" in warnings[0]


# --- Python packages -----------------------------------------------------------------------------------


def make_wheel(folder: Path, name: str = "tinypkg", version: str = "1.0") -> Path:
    """A real, minimal pure-Python wheel (pip installs it without any index)."""
    dist = f"{name}-{version}.dist-info"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{name}/__init__.py", f"VERSION = {version!r}\n")
        archive.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(
            f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{dist}/RECORD", "")
    return wheel


def test_requirements_are_installed_once_per_hash_and_interpreter(tmp_path, cache, monkeypatch):
    # GIVEN a function whose requirements.txt names a local wheel (pip needs no index: offline)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    code = tmp_path / "fn"
    code.mkdir()
    (code / "requirements.txt").write_text(f"{make_wheel(tmp_path)}\n")
    log = Lines()
    runtime = PythonRuntime(Installer(log=log), tmp_path)
    function = Function("Fn", "Fn", code, "app.handler", runtime=f"python{CURRENT}")
    # WHEN its runtime is prepared twice
    first = runtime.launch(function)
    second = runtime.launch(function)
    # THEN the package was installed once, into a cache folder that is on the worker's path after the code
    installs = [line for line in log if line.startswith("installed Fn's requirements.txt")]
    assert len(installs) == 1
    packages = Path(first.config["paths"][1])
    assert (packages / "tinypkg" / "__init__.py").is_file()
    assert packages.is_relative_to(cache)
    assert first.config["paths"][0] == str(code)
    assert second.config == first.config
    # AND the worker runs isolated: -I -S, so only the listed paths and the standard library are importable
    assert first.argv[1:3] == ("-I", "-S")


def test_without_install_a_missing_environment_names_the_command_that_prepares_it(tmp_path, cache):
    # GIVEN a function with requirements nobody installed, and an emulator that may not install (tests)
    code = tmp_path / "fn"
    code.mkdir()
    (code / "requirements.txt").write_text("anything==1.0\n")
    installer = Installer(
        install=False, log=Lines(), prepare_hint="lambdacast local --prepare --template t.yaml"
    )
    function = Function("Fn", "Fn", code, "app.handler", runtime=f"python{CURRENT}")
    # WHEN its runtime is prepared
    with pytest.raises(NotPrepared) as missing:
        PythonRuntime(installer, tmp_path).launch(function)
    # THEN one sentence names what is missing and the command that installs it; nothing was created
    assert str(missing.value) == (
        f"Fn's requirements.txt for Python {CURRENT} is not installed; "
        "run `lambdacast local --prepare --template t.yaml` first (it needs the network)."
    )
    assert not any(path.name.startswith("requirements-") for path in cache.rglob("*"))


def test_a_failed_install_is_one_sentence_and_leaves_no_half_environment(tmp_path, cache, monkeypatch):
    # GIVEN requirements pip cannot satisfy (no index: as offline)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    code = tmp_path / "fn"
    code.mkdir()
    (code / "requirements.txt").write_text("surely-not-a-package-lambdacast==9.9\n")
    function = Function("Fn", "Fn", code, "app.handler", runtime=f"python{CURRENT}")
    # WHEN the emulator tries to install them
    with pytest.raises(LocalError) as failed:
        PythonRuntime(Installer(log=Lines()), tmp_path).launch(function)
    # THEN the error says what failed and what to run once online, and no environment is left behind
    message = str(failed.value)
    assert message.startswith(f"Could not install Fn's requirements.txt for Python {CURRENT}")
    assert message.endswith("run `lambdacast local --prepare` again while online.")
    assert not list((cache / "python").rglob("requirements-*"))


def test_boto3_comes_as_lambdas_runtime_provides_it_after_the_functions_own_packages(tmp_path, cache):
    # GIVEN a function on the emulator's Python version
    function = Function("Fn", "Fn", tmp_path, "app.handler", runtime=f"python{CURRENT}")
    # WHEN its runtime is prepared without network or install permission
    launch = PythonRuntime(Installer(install=False, log=Lines()), tmp_path).launch(function)
    # THEN boto3 and botocore are linked from the emulator's own copy, last on the path
    provided = Path(launch.config["paths"][-1])
    assert (provided / "boto3").resolve() == Path(__import__("boto3").__file__).parent.resolve()
    assert (provided / "botocore").is_symlink()
    assert not (provided / "aiohttp").exists()


def test_a_layer_with_a_python_build_method_gets_its_requirements(tmp_path, cache, monkeypatch):
    # GIVEN a layer (BuildMethod pythonX) whose requirements.txt names a local wheel
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    layer_dir = tmp_path / "layer"
    layer_dir.mkdir()
    (layer_dir / "requirements.txt").write_text(f"{make_wheel(tmp_path, 'layerpkg')}\n")
    layer = Layer("Deps", layer_dir, f"python{CURRENT}")
    function = Function("Fn", "Fn", tmp_path, "app.handler", runtime=f"python{CURRENT}", layers=(layer,))
    # WHEN the function's runtime is prepared
    paths = PythonRuntime(Installer(log=Lines()), tmp_path).launch(function).config["paths"]
    # THEN the layer folder and its installed packages follow the code, as in /opt/python after sam build
    assert paths[1] == str(layer_dir)
    assert (Path(paths[2]) / "layerpkg").is_dir()


# --- sam build artifacts -------------------------------------------------------------------------------


def built(tmp_path: Path, logical_id: str, tag: str) -> Path:
    folder = tmp_path / ".aws-sam" / "build" / logical_id
    dist = folder / "nativepkg-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "WHEEL").write_text(f"Wheel-Version: 1.0\nTag: {tag}\n")
    (folder / "app.py").write_text("def handler(event, context):\n    return 1\n")
    return folder


def test_a_fresh_artifact_that_runs_here_is_used(tmp_path, cache):
    # GIVEN source code, then a sam build artifact with a pure-Python wheel, built after it
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_text("def handler(event, context):\n    return 1\n")
    os.utime(source / "app.py", (1, 1))
    artifact = built(tmp_path, "Fn", "py3-none-any")
    log = Lines()
    function = Function("Fn", "Fn", source, "app.handler", runtime=f"python{CURRENT}")
    # WHEN the function's runtime is prepared
    launch = PythonRuntime(Installer(install=False, log=log), tmp_path).launch(function)
    # THEN the worker runs the artifact
    assert launch.function.code_dir == artifact
    assert launch.config["paths"][0] == str(artifact)


def test_an_artifact_built_for_arm64_is_ignored_with_a_line_saying_why(tmp_path):
    # GIVEN a sam build artifact holding an aarch64 wheel (Architectures: [arm64] built on this machine)
    built(tmp_path, "Fn", f"cp{CURRENT.replace('.', '')}-cp{CURRENT.replace('.', '')}-manylinux_2_17_aarch64")
    source = tmp_path / "src"
    source.mkdir()
    os.utime(source, (1, 1))
    # WHEN it is considered
    result = find_artifact(
        tmp_path, "Fn", source, iter([foreign_wheel([tmp_path / ".aws-sam" / "build" / "Fn"], CURRENT)])
    )
    # THEN it is not used, and the reason names the package and its tag
    assert result.folder is None
    assert result.reason.startswith("ignoring .aws-sam/build/Fn: nativepkg-1.0 is a cp")
    assert "aarch64" in result.reason


def test_an_artifact_for_another_python_version_is_ignored(tmp_path):
    built(tmp_path, "Fn", "cp313-cp313-manylinux_2_17_x86_64")
    # THEN Python 3.12 cannot load it, Python 3.13 can (on an x86_64 Linux machine)
    assert foreign_wheel([tmp_path / ".aws-sam" / "build" / "Fn"], "3.12") is not None
    if os.uname().machine == "x86_64":
        assert foreign_wheel([tmp_path / ".aws-sam" / "build" / "Fn"], "3.13") is None


def test_a_stale_artifact_is_ignored(tmp_path):
    # GIVEN an artifact, then a source file changed after it was built
    built(tmp_path, "Fn", "py3-none-any")
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_text("changed")
    future = (tmp_path / ".aws-sam" / "build" / "Fn").stat().st_mtime + 60
    os.utime(source / "app.py", (future, future))
    # THEN it is not used
    result = find_artifact(tmp_path, "Fn", source, iter([None]))
    assert result.folder is None
    assert result.reason == "ignoring .aws-sam/build/Fn: src/ changed after sam build"


def test_native_libraries_for_another_processor_are_detected(tmp_path):
    # GIVEN an ELF shared object whose header says aarch64 (e_machine 183) and one for this machine
    header = bytearray(b"\x7fELF\x02\x01\x01" + b"\x00" * 13)
    header[18:20] = (183).to_bytes(2, "little")
    (tmp_path / "_native.cpython-313-aarch64-linux-gnu.so").write_bytes(bytes(header))
    # THEN it is reported on an x86_64 machine
    if os.uname().machine == "x86_64":
        assert "is built for aarch64, this machine is x86_64" in (foreign_binary(tmp_path, (".so",)) or "")
    assert foreign_binary(tmp_path, (".node",)) is None


# --- Node.js -------------------------------------------------------------------------------------------


def node_function(tmp_path: Path, runtime: str = "nodejs20.x") -> Function:
    code = tmp_path / "fn"
    code.mkdir(exist_ok=True)
    return Function("Fn", "Fn", code, "app.handler", runtime=runtime)


@pytest.fixture
def node_major() -> int:
    if shutil.which("node") is None:
        pytest.skip("SKIPPED LOUDLY: node is not on PATH")
    from lambdacast_local.runtimes.node import find_node

    found = find_node(20)
    assert found is not None
    return found.major


def test_node_without_the_sdk_in_cache_names_the_command_that_installs_it(tmp_path, cache, node_major):
    # GIVEN a Node.js function without node_modules, and no SDK in the user cache
    installer = Installer(
        install=False, log=Lines(), prepare_hint="lambdacast local --prepare --template t.yaml"
    )
    # WHEN its runtime is prepared by an emulator that may not install
    with pytest.raises(NotPrepared) as missing:
        NodeRuntime(installer, tmp_path).launch(node_function(tmp_path))
    # THEN one sentence names the SDK and the command
    assert str(missing.value).startswith("the AWS SDK for JavaScript v3 (")
    assert str(missing.value).endswith(
        "run `lambdacast local --prepare --template t.yaml` first (it needs the network)."
    )


def test_a_node_function_with_its_own_sdk_needs_no_install(tmp_path, cache, node_major):
    # GIVEN a function that ships @aws-sdk in its own node_modules
    function = node_function(tmp_path)
    (function.code_dir / "node_modules" / "@aws-sdk").mkdir(parents=True)
    # WHEN its runtime is prepared offline with an empty cache
    launch = NodeRuntime(Installer(install=False, log=Lines()), tmp_path).launch(function)
    # THEN it runs on node, its own modules first (natural resolution), NODE_PATH ending with the code folder
    assert launch.argv[1].endswith("worker.mjs")
    assert launch.env["NODE_PATH"] == str(function.code_dir)
    assert launch.config["esm_paths"] == []


def test_layer_node_modules_come_before_the_sdk(tmp_path, cache, node_major):
    # GIVEN a layer with nodejs/node_modules (and its own @aws-sdk)
    layer_dir = tmp_path / "layer"
    modules = layer_dir / "nodejs" / "node_modules"
    (modules / "@aws-sdk").mkdir(parents=True)
    function = node_function(tmp_path)
    function = Function(
        "Fn", "Fn", function.code_dir, "app.handler", runtime="nodejs20.x", layers=(Layer("L", layer_dir),)
    )
    # WHEN prepared
    launch = NodeRuntime(Installer(install=False, log=Lines()), tmp_path).launch(function)
    # THEN CommonJS and ES module resolution both fall back to the layer's node_modules
    assert launch.config["esm_paths"] == [str(modules)]
    assert launch.env["NODE_PATH"].split(os.pathsep) == [str(modules), str(function.code_dir)]


def test_a_node_major_version_mismatch_runs_with_one_warning_naming_both(tmp_path, cache, node_major):
    # GIVEN two functions declaring a Node.js major version this machine's node is not
    other = 22 if node_major != 22 else 20
    function = node_function(tmp_path, f"nodejs{other}.x")
    (function.code_dir / "node_modules" / "@aws-sdk").mkdir(parents=True)
    log = Lines()
    runtime = NodeRuntime(Installer(install=False, log=log), tmp_path)
    # WHEN both are prepared
    runtime.launch(function)
    runtime.launch(Function("G", "G", function.code_dir, "app.handler", runtime=f"nodejs{other}.x"))
    # THEN they run anyway, with one warning naming both versions
    warnings = [line for line in log if line.startswith("WARNING")]
    assert len(warnings) == 1
    assert f"nodejs{other}.x functions run on this machine's Node.js {node_major}." in warnings[0]
    assert f"not Node.js {other}." in warnings[0]


def test_prepare_chooses_the_worker_from_the_runtime(tmp_path, cache, node_major):
    node = node_function(tmp_path)
    (node.code_dir / "node_modules" / "@aws-sdk").mkdir(parents=True)
    python = Function("Py", "Py", tmp_path, "app.handler", runtime=f"python{CURRENT}")
    # WHEN a Node.js and a Python function are prepared, with hosts to redirect
    launches = prepare(
        {"Fn": node, "Py": python}, tmp_path, Installer(install=False, log=Lines()), hosts={"h:443": 9}
    )
    # THEN each gets its language's worker, and both the same hosts map
    assert launches["Fn"].argv[-1].endswith("worker.mjs")
    assert launches["Py"].argv[-1].endswith("worker.py")
    assert launches["Fn"].config["hosts"] == launches["Py"].config["hosts"] == {"h:443": 9}


# --- AWS hostnames in the Python worker ----------------------------------------------------------------


def test_the_python_worker_resolves_exactly_the_mapped_hosts_to_the_emulator(monkeypatch):
    # GIVEN the worker's redirection for one AWS host on port 443 (socket.getaddrinfo restored afterwards)
    monkeypatch.setattr(socket, "getaddrinfo", socket.getaddrinfo)
    redirect_hosts({"dynamodb.us-east-1.amazonaws.com:443": 4567})
    # THEN that host (any case, as str or bytes, port as int or str) resolves to the local listener
    for host, port in (
        ("dynamodb.us-east-1.amazonaws.com", 443),
        ("DynamoDB.us-east-1.amazonaws.com", "443"),
        (b"dynamodb.us-east-1.amazonaws.com", 443),
    ):
        assert socket.getaddrinfo(host, port)[0][4] == ("127.0.0.1", 4567)
    # AND any other host resolves as before, its port untouched
    assert socket.getaddrinfo("localhost", 443, socket.AF_INET)[0][4] == ("127.0.0.1", 443)
    assert socket.getaddrinfo("127.0.0.1", 80)[0][4][1] == 80


def test_the_node_worker_ships_with_the_package():
    # GIVEN the packaging configuration
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    # THEN every package folder of the emulator and of the layer is listed (a wheel would leave out
    # any other), and the Node.js worker is package data
    folders = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "lambdacast_local").rglob("__init__.py")
    } | {
        ".".join(path.parent.relative_to(ROOT / "shared").parts)
        for path in (ROOT / "shared" / "lambdacast").rglob("__init__.py")
    }
    assert folders <= set(config["packages"])
    shipped = config["package-data"]["lambdacast_local.runtimes"]
    assert any(fnmatch.fnmatch("worker.mjs", pattern) for pattern in shipped)
