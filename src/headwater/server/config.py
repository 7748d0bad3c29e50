"""What a server is configured with, beyond the store: limits, the API key, services."""

from __future__ import annotations

import dataclasses

from headwater.schemas.flow_runs import PARAMETERS_MAX_BYTES

KIB = 1024
MIB = 1024 * KIB


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Options of `create_app` (to become fields of `headwater.settings.Settings`).

    Attributes:
        api_key: when set, every /api route but /api/health needs
            `Authorization: Bearer <api_key>`.
        parameters_max_bytes: the largest `parameters` of a flow run, as JSON.
        request_max_bytes: the largest request body, except on batch endpoints.
        records_max_bytes: the largest body of `POST /api/records` and `POST /api/logs`.
        services: run the background services (scheduler, crash detection, ...) here.
        services_interval: seconds between two rounds of the services.
        claim_max_wait: the longest a worker's claim request is held open (long poll),
            whatever `wait` it asks for; keep it under any proxy's read timeout.
    """

    api_key: str | None = None
    parameters_max_bytes: int = PARAMETERS_MAX_BYTES
    request_max_bytes: int = 4 * MIB
    records_max_bytes: int = 32 * MIB
    services: bool = False
    services_interval: float = 10.0
    claim_max_wait: float = 60.0
