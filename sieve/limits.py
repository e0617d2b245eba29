"""Named limits on everything a client controls."""

MAX_K = 1000
"""Most items one query may return."""

MAX_ITEMS_PER_CALL = 100_000
"""Most items one create or add-items call may carry."""

MAX_LABELS_PER_CALL = 10_000
"""Most labels one teach call may carry."""

MAX_POOL_ITEMS = 2_000_000
"""Most items one pool may hold."""

MAX_FEATURE_DIM = 10_000
"""Most features one item may have."""

DEFAULT_MAX_POOL_VALUES = 384 * 1024 * 1024
"""Most feature values (items x dimension) one pool of feature vectors may hold unless SIEVE_MAX_POOL_VALUES
says otherwise: 1,048,576 items of a 384-wide embedding, 1.5 GiB as float32, which one worker's default
feature cache (2 GiB) still holds whole."""

MAX_POOL_VALUES_CEILING = MAX_POOL_ITEMS * MAX_FEATURE_DIM
"""The highest SIEVE_MAX_POOL_VALUES accepted: no pool could hold more items x dimension anyway."""

MAX_POOL_NONZEROS = 64 * 1024 * 1024
"""Most non-zero feature values (the distinct terms of its items, summed) one text pool may hold: 384 MiB
as stored (a 2-byte column and a 4-byte value each)."""

MAX_ID_LENGTH = 200
"""Longest item id, in characters."""

MAX_NAME_LENGTH = 200
"""Longest pool name, in characters."""

MAX_LABEL_LENGTH = 200
"""Longest string label, in characters."""

MAX_CLASSES = 1000
"""Most distinct classes one pool may have."""

MAX_PREDICT_ROWS = 10_000
"""Most rows one predict call may score."""

ROWS_PER_CHUNK = 65_536
"""Most feature rows stored per Redis key; also the rows per key of pools whose meta records no
`chunk_rows` (they were stored before chunks were sized in bytes)."""

MAX_CHUNK_BYTES = 64 * 1024 * 1024
"""Most bytes of one stored feature chunk: a pool's rows per chunk are derived from its dimension so
that no chunk key ever grows past this, whatever the dimension."""

REDIS_MAX_STRING_BYTES = 512 * 1024 * 1024
"""Redis's own limit on one string value (`proto-max-bulk-len`): an append past it fails."""

MAX_LEASE_SECONDS = 24 * 3600.0
"""Longest lease a query may ask for."""

MAX_QUERY_WAIT_SECONDS = 30.0
"""Longest a query may wait for a ranking that reflects the latest labels."""

MAX_TEXT_FEATURES = 8192
"""Most columns a text pool's featurizer may hash text into."""

MAX_TEXT_LENGTH = 100_000
"""Longest text of one item, in characters."""

MAX_PLATEAU_WINDOW = 100
"""Most model versions a plateau rule may ask to agree in a row."""

MAX_LIST_POOLS = 1000
"""Most pools one page of GET /v1/pools holds (its default `limit`)."""

MAX_METRICS_POOLS = 1000
"""Most pools /metrics reports one by one (by id order); sieve_pools counts them all."""

MAX_MODEL_ITERATIONS = 1000
"""Most iterations (epochs for SGD) a model spec may ask for: with `tol: null` SGD runs every one."""

MAX_FOREST_TREES = 100
"""Most trees a random forest may have: fit time and model size grow with each."""

MAX_TREE_LEAVES = 1000
"""Most leaves per tree of a random forest, and its default: bounds the model's size whatever the labels."""

MAX_FOREST_SPLIT_FEATURES = 800
"""Most n_estimators x max_features (an integer) of a random forest, whose fit time grows with both: the
default forest's on 64 features (100 trees x 8)."""
