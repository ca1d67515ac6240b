"""``streamcrm verify``: what an SRE runs before go-live to check that nothing is lost.

It publishes a known synthetic workload (:mod:`.workload`), SIGKILLs and SIGTERMs
workers while they work, adds and removes a second worker, optionally takes Redis away
and back (:mod:`.plan`, :mod:`.cluster`), then reads every output topic, the customers
table's changelog and Redis (:mod:`.readback`), runs the pure core on the same events
(:mod:`.reference`) and reports what differs (:mod:`.figures`: every figure is defined
there). ``--json`` prints one JSON object as the last stdout line.
"""
