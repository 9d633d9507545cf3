"""The table of static-scan and import rules: each rule's id, severity and the sentence that explains it.

Keeping every rule in one table makes the rule set reviewable at a glance, lets the docs and the CLI list it,
and lets the tests check that each rule has a sample pack that fires it and a look-alike that does not.
Archive rules (``archive.*``) always reject; the others flag from severity ``medium`` up.
"""

from __future__ import annotations

from hearth.sandbox.findings import Finding

RULES: dict[str, tuple[str, str]] = {
    # -- archive safety (always reject; checked in hearth.sandbox.archive)
    "archive.traversal": ("critical", "A member's path is absolute or climbs out with '..', so unpacking it would write outside the target folder."),
    "archive.link": ("critical", "A member is a symbolic or hard link, which can point at files outside the pack."),
    "archive.device": ("critical", "A member is a device, pipe or other special file, not a regular file or folder."),
    "archive.bomb": ("critical", "The archive expands far beyond its own size, the mark of a zip bomb."),
    "archive.overlap": ("critical", "Members of the zip share their compressed data, a zip-bomb trick."),
    "archive.too-large": ("high", "The archive unpacks to more bytes than a node pack may hold."),
    "archive.too-many-files": ("high", "The archive holds more files than a node pack may."),
    "archive.duplicate-name": ("high", "Two members have the same name, so one silently replaces the other."),
    "archive.case-collision": ("high", "Two member names differ only in case or Unicode form, so they collide on Windows and macOS."),
    "archive.bad-name": ("high", "A member's name is not valid UTF-8 or holds control characters, so tools disagree on what it is."),
    "archive.not-shipped": ("high", "The archive holds a version-control folder, __pycache__ or Python bytecode (.pyc/.pyo), which the wheel would ship but no review reads: build the archive with `comfy node publish`, which leaves them out."),
    "archive.unreadable": ("high", "The archive cannot be read, so it cannot be checked."),
    # -- running hidden code
    "exec.dynamic": ("high", "Runs code assembled at run time with eval/exec/compile, so what runs is not what was reviewed."),
    "exec.decoded": ("critical", "Runs code decoded from base64, zlib, marshal, codecs or hex, the usual wrapping of a hidden payload."),
    # -- other programs
    "process.spawn": ("medium", "Starts another program, which a node pack rarely needs and malware always does."),
    "process.pip-install": ("high", "Installs packages at run time, bypassing the registry's dependency review and the environment lock."),
    # -- network
    "network.import-time": ("high", "Uses the network while the pack is being imported, before the user has run any node."),
    "network.download": ("high", "Fetches code or a binary (or from a paste site), which can change after review."),
    "network.webhook": ("critical", "Talks to a Discord, Telegram or Slack webhook, a common channel for exfiltrating stolen data."),
    # -- credentials
    "credentials.path": ("high", "Refers to SSH keys, browser profiles, crypto wallets or cloud credential files, which a node has no reason to read."),
    "credentials.env": ("medium", "Reads an environment variable named like a token, key or password."),
    "credentials.env-dump": ("high", "Copies or walks the whole environment, where tokens and keys live."),
    # -- obfuscation
    "obfuscation.long-line": ("medium", "Has a very long line, typical of packed or minified code that hides its logic."),
    "obfuscation.entropy": ("medium", "Holds a long high-entropy string literal, typical of an encoded payload."),
    "obfuscation.chr-build": ("medium", "Builds a string from chr() codes, a way to hide names and URLs from review."),
    "obfuscation.reversed": ("medium", "Reverses a string literal, a way to hide names and URLs from review."),
    "obfuscation.dynamic-name": ("medium", "Imports a module or takes a module attribute by a computed name, hiding what is called."),
    "obfuscation.deep-nesting": ("high", "A Python file is nested too deeply to parse, a way to slip code past scanners."),
    "obfuscation.computed-import": ("low", "Imports a module by a computed name through importlib; common in loaders, so shown for review only."),
    # -- files and installation
    "fs.write-outside": ("medium", "Writes outside the pack's folder (home, system, startup or site-packages paths)."),
    "install.script": ("medium", "Has an install.py that ComfyUI managers run on install, with the user's rights and before anyone reviews it."),
    "install.setup-side-effects": ("high", "Has a setup.py that does more than declare the package, so installing it runs code."),
    # -- what cannot be reviewed
    "binary.compiled": ("high", "Ships a compiled binary (ELF, PE or Mach-O) whose code cannot be reviewed."),
    "binary.pyc": ("high", "Ships Python bytecode without its source, so the code that runs cannot be reviewed."),
    "binary.nested-archive": ("medium", "Ships an archive inside the pack, which hides its contents from this scan."),
    "code.unparsable": ("high", "A Python file does not parse or is over the size limit, so it was not scanned and what it does is unknown."),
    # -- the wider scan (triage: shapes common in malware, rare in node packs)
    "code.builtins": ("medium", "Reaches into the builtins namespace (__builtins__ or the builtins module), the usual way to hide a call to exec, eval or __import__."),
    "code.monkeypatch": ("medium", "Replaces an attribute of os, subprocess, builtins or another sensitive module, which changes what later calls do."),
    "code.pickle": ("medium", "Deserialises pickle or marshal data, which runs whatever code the data names."),
    "code.native": ("medium", "Calls native code through ctypes or cffi, which reaches the C library (system, exec) past Python's view."),
    "code.loader": ("low", "Loads a module from a file path with an importlib loader; common in ComfyUI loaders, so shown for review only."),
    "code.loader-data": ("high", "Loads code with an importlib loader from a file that is not Python source (a data file or bytecode)."),
    "code.hidden-module": ("high", "A file not named .py holds Python code while the pack loads modules by path, so it can run unreviewed."),
    "process.import-thread": ("medium", "Starts a thread, timer or process while the pack is imported, so code keeps running after the import looks done."),
    "process.exit": ("medium", "Ends the process with os._exit or abort, skipping cleanup and any report the host expects."),
    "network.call": ("medium", "Uses the network (inside a function, so when a node runs), a way to send data out or fetch code later."),
    "evasion.raw-descriptor": ("medium", "Writes to or duplicates file descriptors by number, the way code reaches a channel its host keeps for itself (a result pipe)."),
    "evasion.sandbox-probe": ("high", "Checks whether it runs in a sandbox (network interfaces, /proc status, container or CI variables), so it can behave only when unobserved."),
    # -- dependencies
    "deps.url": ("high", "A requirement points at a URL or a file instead of the package index, so anything can be served."),
    "deps.vcs": ("high", "A requirement installs from a version-control link, which is unreviewed and can change at any time."),
    "deps.index": ("high", "The requirements add or replace the package index, letting another server supply any package."),
    "deps.malicious": ("critical", "Depends on a package (or version) known to be malicious."),
    "deps.typosquat": ("high", "Depends on a name one typo away from a popular package, the trap typosquatters set."),
    # -- the isolated import
    "import.isolation-unavailable": ("high", "This platform cannot isolate the import (no network namespace), so the pack was not imported and its nodes are unknown."),
    "import.timeout": ("high", "Importing the pack did not finish within the time limit and was killed."),
    "import.cpu-limit": ("medium", "Importing the pack used more CPU time than the limit and was killed."),
    "import.memory-limit": ("medium", "Importing the pack ran out of the memory it is allowed."),
    "import.file-size-limit": ("medium", "Importing the pack wrote a file larger than the limit."),
    "import.process-limit": ("high", "Importing the pack tried to start processes until the process limit stopped it (a fork bomb)."),
    "import.subprocess": ("high", "Importing the pack started another process."),
    "import.network": ("high", "Importing the pack reached for the network."),
    "import.crash": ("medium", "Importing the pack crashed the Python process."),
    "import.forged-report": ("high", "The isolated import's report did not come from the harness (unauthenticated, out of order or written by other code), so it and its node list were discarded."),
    "import.failed": ("low", "Importing the pack raised an exception, so its nodes could not be listed."),
    "import.node-name-collision": ("medium", "The pack registers a node name that core or one of Hearth's own plugins already provides; at load time the existing node stays unless the user allows the override (HEARTH_ALLOW_OVERRIDE)."),
}


def severity_of(rule: str) -> str:
    return RULES[rule][0]


def finding(rule: str, path: str, line: int = 0, snippet: str = "", detail: str = "") -> Finding:
    """A finding of ``rule``; ``detail`` (a short phrase) is added to the rule's sentence when it helps."""
    severity, message = RULES[rule]
    if detail:
        message = f"{message[:-1]} ({detail})."
    return Finding(rule, severity, path, line, clip(snippet), message)


def clip(text: str, width: int = 160) -> str:
    """One line of at most ``width`` characters, for tables and JSON alike."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
