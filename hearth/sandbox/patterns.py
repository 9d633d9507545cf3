"""The vocabulary of the static scan: which calls, strings and paths count as risky, kept apart from the walker.

Each set names fully qualified callables (as resolved through a file's imports); each regular expression is
matched against string literals. Widening the scan is usually a one-line change here.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

EXECUTORS = frozenset({"eval", "exec", "compile", "builtins.eval", "builtins.exec", "builtins.compile"})

DECODERS = frozenset({
    "base64.b64decode", "base64.b32decode", "base64.b16decode", "base64.b85decode", "base64.a85decode",
    "base64.decodebytes", "base64.urlsafe_b64decode", "base64.standard_b64decode",
    "zlib.decompress", "gzip.decompress", "bz2.decompress", "lzma.decompress", "marshal.loads",
    "codecs.decode", "binascii.unhexlify", "binascii.a2b_hex", "binascii.a2b_base64", "bytes.fromhex",
})

PROCESS = frozenset({
    "subprocess.Popen", "subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
    "subprocess.getoutput", "subprocess.getstatusoutput",
    "os.system", "os.popen", "os.startfile", "os.fork", "os.forkpty", "os.posix_spawn", "os.posix_spawnp",
    *(f"os.exec{s}" for s in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")),
    *(f"os.spawn{s}" for s in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")),
    "pty.spawn", "pty.fork", "asyncio.create_subprocess_exec", "asyncio.create_subprocess_shell",
    "commands.getoutput", "runpy.run_module",
})

_HTTP_VERBS = ("get", "post", "put", "patch", "delete", "head", "options", "request", "stream")

# Calls that open a connection or resolve a host (prefixes: methods of what they return count too).
NETWORK = (
    "urllib.request.urlopen", "urllib.request.urlretrieve", "urllib.urlopen", "urllib2.urlopen",
    *(f"requests.{verb}" for verb in _HTTP_VERBS), *(f"httpx.{verb}" for verb in _HTTP_VERBS),
    "urllib3.request", "http.client.HTTPConnection", "http.client.HTTPSConnection", "socket.socket",
    "socket.create_connection", "socket.getaddrinfo", "socket.gethostbyname", "ftplib.FTP", "smtplib.SMTP",
    "telnetlib.Telnet", "websocket.create_connection", "websockets.connect", "huggingface_hub.hf_hub_download",
    "huggingface_hub.snapshot_download", "git.Repo.clone_from", "asyncio.open_connection", "requests.Session",
    "requests.session", "httpx.Client", "httpx.AsyncClient", "aiohttp.ClientSession", "aiohttp.request",
    "urllib.request.build_opener", "urllib.request.Request",
)

# Modules whose attributes reach processes, files, the network or code loading: fetching one of their
# attributes by a computed name hides a dangerous call (getattr(torch, dtype_name) hides nothing).
SENSITIVE_MODULES = frozenset({
    "builtins", "__builtins__", "os", "sys", "subprocess", "importlib", "socket", "ctypes", "shutil", "pty",
    "marshal", "pickle", "base64", "codecs", "zlib", "urllib", "requests", "httpx", "http", "runpy", "types",
})

# Calls that return a namespace, so indexing them by a computed name reaches any global or builtin.
NAMESPACE_CALLS = frozenset({"globals", "locals", "vars", "builtins.__dict__.get", "__import__"})

# Calls that turn a value into text or bytes: given the whole environment, they package it for sending.
SERIALIZERS = frozenset({"str", "repr", "print", "json.dumps", "json.dump", "pickle.dumps", "pickle.dump",
                         "marshal.dumps", "base64.b64encode", "zlib.compress"})

COPY_CALLS = frozenset({
    "shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.copytree", "shutil.move", "os.rename",
    "os.replace", "os.link", "os.symlink",
})

# Lookups whose result is a place outside the pack: the user's home, the interpreter, site-packages.
HOME_LOOKUPS = frozenset({
    "os.path.expanduser", "os.path.expandvars", "pathlib.Path.home", "Path.home", "pathlib.Path.expanduser",
    "site.getsitepackages", "site.getusersitepackages", "sysconfig.get_paths", "sysconfig.get_path",
    "sys.prefix", "sys.exec_prefix", "sys.base_prefix", "os.environ.get", "os.getenv",
})

# A path is outside the pack when it starts at the root, the home folder or an environment variable...
ABSOLUTE_PATH = re.compile(r"^(/|~|[A-Za-z]:[\\/]|%\w+%|\$HOME)")
# ...or names a place that makes code run later (shell profiles, autostart, site-packages), wherever it appears.
SENSITIVE_TARGETS = re.compile(
    r"site-packages|Start Menu|[\\/]Startup\b|\.bashrc|\.profile|\.zshrc|crontab|autostart|LaunchAgents",
    re.IGNORECASE,
)
PATH_BUILDERS = frozenset({"os.path.join", "pathlib.Path", "Path", "pathlib.PurePath", "os.fspath", "str"})
HARMLESS_PATH = re.compile(r"^/(tmp|dev/null)(/|$)")

SECRET_ENV = re.compile(r"TOKEN|SECRET|PASSW(OR)?D|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|COOKIE", re.IGNORECASE)

_CREDENTIAL_PATHS = re.compile(
    r"(^|[\\/~])\.ssh([\\/]|$)|\bid_(rsa|dsa|ecdsa|ed25519)\b|authorized_keys"
    r"|(^|[\\/~])\.aws([\\/]|$)|\.config[\\/]gcloud|application_default_credentials\.json|(^|[\\/~])\.azure([\\/]|$)"
    r"|\.kube[\\/]config|\.docker[\\/]config\.json|(^|[\\/~])\.netrc$|\.git-credentials|\.pypirc|\.npmrc"
    r"|Login Data|Web Data|Local State|User Data[\\/]|logins\.json|key4\.db|cookies\.sqlite"
    r"|Google[\\/]Chrome|BraveSoftware|Mozilla[\\/]Firefox|Microsoft[\\/]Edge|Opera Software"
    r"|wallet\.dat|(^|[\\/])(Exodus|Electrum|Ethereum[\\/]keystore|Monero|Armory)([\\/]|$)"
    r"|nkbihfbeogaeaoehlefnkodbefgpgknn|Telegram Desktop|(^|[\\/])tdata([\\/]|$)",
    re.IGNORECASE,
)
WEBHOOKS = re.compile(
    r"discord(app)?\.com/api/webhooks|api\.telegram\.org/bot|hooks\.slack\.com/services", re.IGNORECASE
)

# (rule, pattern) pairs matched against every string literal that is not a docstring.
STRING_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (("network.webhook", WEBHOOKS), ("credentials.path", _CREDENTIAL_PATHS))
CREDENTIAL_PATHS = _CREDENTIAL_PATHS

_EXECUTABLE_SUFFIXES = (
    ".exe", ".dll", ".so", ".dylib", ".sh", ".bat", ".cmd", ".ps1", ".vbs", ".py", ".pyc", ".pyw", ".jar",
    ".msi", ".scr", ".elf", ".deb", ".rpm", ".apk", ".whl",
)
_PASTE_HOSTS = (
    "pastebin.com", "paste.ee", "hastebin.com", "rentry.co", "transfer.sh", "termbin.com", "0x0.st", "ix.io",
    "pastes.io", "ghostbin.co", "gofile.io", "anonfiles.com",
)


def names_code(text: str) -> bool:
    """True for a file name of code or a binary (the place a download is saved to, say)."""
    return text.lower().endswith(_EXECUTABLE_SUFFIXES) and not any(c.isspace() for c in text)


def is_download(text: str) -> bool:
    """True for a URL that fetches code or a binary, or anything from a paste or anonymous file host."""
    if not text.startswith(("http://", "https://", "ftp://")) or any(c.isspace() for c in text):
        return False
    try:
        url = urlsplit(text)
    except ValueError:
        return False
    host = (url.hostname or "").lower()
    if any(host == h or host.endswith("." + h) for h in _PASTE_HOSTS):
        return True
    return url.path.lower().endswith(_EXECUTABLE_SUFFIXES)

# -- the wider scan (a triage aid: each shape below is common in malware and rare in node packs) ---------------

# Deserialisers that run code chosen by whoever wrote the data.
UNPICKLERS = frozenset({
    "pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads", "cPickle.load",
    "cPickle.loads", "marshal.load", "marshal.loads", "dill.load", "dill.loads", "cloudpickle.load",
    "cloudpickle.loads", "shelve.open", "jsonpickle.decode",
})
# Foreign-function interfaces: a call through them reaches libc (system, execve) without Python seeing it.
NATIVE_PREFIXES = ("ctypes.", "_ctypes.", "cffi.")

# Loaders that turn a file into a running module; the file need not be named .py.
LOADERS = frozenset({
    "importlib.machinery.SourceFileLoader", "importlib.machinery.SourcelessFileLoader",
    "importlib.machinery.ExtensionFileLoader", "importlib.util.spec_from_file_location",
    "importlib.util.spec_from_loader", "importlib.util.module_from_spec", "runpy.run_path", "imp.load_source",
    "imp.load_compiled", "imp.load_dynamic", "imp.load_module", "zipimport.zipimporter",
})
LOADER_METHODS = frozenset({"exec_module", "load_module"})
BYTECODE_LOADERS = frozenset({"importlib.machinery.SourcelessFileLoader", "imp.load_compiled"})
SOURCE_SUFFIXES = (".py", ".pyw")
# Folders no review reads (and no archive may hold): code loaded from there was never seen.
UNREVIEWED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__"})

# Started at import, these run code nobody called, in the background, after the import looks finished.
THREAD_STARTERS = frozenset({
    "threading.Thread", "threading.Timer", "_thread.start_new_thread", "_thread.start_new", "thread.start_new_thread",
    "multiprocessing.Process", "sched.scheduler", "signal.setitimer", "signal.alarm",
})
HARD_EXITS = frozenset({"os._exit", "os.abort", "posix._exit"})
# Writing to inherited descriptors by number is how a pack would reach a host's private channel (a result pipe).
RAW_DESCRIPTOR_CALLS = frozenset({"os.write", "os.writev", "os.pwrite", "os.dup", "os.dup2", "os.closerange",
                                  "os.fdopen", "posix.write", "os.sendfile", "os.set_inheritable"})

# Questions only code that behaves differently inside a sandbox asks.
SANDBOX_PROBE_CALLS = frozenset({"socket.if_nameindex", "socket.if_nametoindex", "os.getppid", "psutil.net_if_addrs"})
SANDBOX_PROBE_STRINGS = re.compile(
    r"/proc/self/(status|cgroup|mountinfo|mounts|ns\b|uid_map)|/proc/1/(cgroup|sched|environ)|/\.dockerenv"
    r"|/run/\.containerenv|NoNewPrivs|CapEff|Seccomp:|/sys/class/net|/proc/net/(dev|route)",
)
# Settings a pack may read (HEARTH_MODELS, HF_HOME) are not here: only "am I being watched?" variables.
SANDBOX_ENV = re.compile(r"SANDBOX|CONTAINER|DOCKER|KUBERNETES|^CI$|GITHUB_ACTIONS|GITLAB_CI|PYTEST_CURRENT_TEST",
                         re.I)

# Modules whose attributes a pack must not replace (monkeypatching os.system hides a later call).
# (Not HTTP clients: `requests.adapters.DEFAULT_RETRIES = 5` is ordinary tuning.)
PATCHED_MODULES = frozenset({"builtins", "__builtins__", "os", "subprocess", "importlib", "socket", "ctypes", "shutil",
                             "pty", "marshal", "pickle", "runpy", "posix", "io"})

STRING_RULES += (("evasion.sandbox-probe", SANDBOX_PROBE_STRINGS),)
