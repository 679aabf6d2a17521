"""driftd_client: send a model server's inputs to driftd without ever slowing the server down.

    from driftd_client import DriftdClient

    client = DriftdClient("http://127.0.0.1:8471", "search_ranking_inputs")
    client.log({"query_len": 3, "country": "US"}, id=request_id)   # never blocks, never raises

See the package README for batching, retries, what is lost when, forking servers and asyncio.
"""

from ._client import DriftdClient

__all__ = ["DriftdClient", "__version__"]
__version__ = "0.1.0"
