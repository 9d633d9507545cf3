"""The ``aiohttp`` package as packs see it when aiohttp is not installed: only ``aiohttp.web`` is provided.

Any other name (``from aiohttp import ClientSession``) gets the import hook's stand-in, so the pack still loads;
the code that uses it fails naming the name and the pack. Installing aiohttp (``pip install aiohttp``) gives such
packs the real library, which the hook then never shadows.
"""
