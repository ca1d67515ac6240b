"""The decision path of a worker without I/O: records in (:mod:`.batch`), decoded and
validated or dead-lettered (:mod:`.dead_letter`), applied and decided (:mod:`.processor`)."""

from streamcrm.ingest.batch import BatchResult, Erased, Horizon, Lookup, Owned, Record
from streamcrm.ingest.dead_letter import dead_letter
from streamcrm.ingest.processor import Processor, process_batch

__all__ = [
    "BatchResult", "Erased", "Horizon", "Lookup", "Owned", "Processor", "Record",
    "dead_letter", "process_batch",
]  # fmt: skip
