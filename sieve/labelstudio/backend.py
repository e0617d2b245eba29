"""Label Studio's ML-backend use cases over Sieve's pools: setup, predict and webhook events."""

from __future__ import annotations

import json
import logging

import numpy as np

from sieve.core.errors import Conflict, InvalidInput, NotFound, SieveError
from sieve.core.items import ItemBatch
from sieve.core.registry import REGISTRY
from sieve.job_queue import enqueue_sync, enqueue_train
from sieve.labelstudio import protocol
from sieve.labelstudio.config import MAX_CONFIG_CHARS, MAX_FIELD_NAME, LabelConfig, parse_label_config
from sieve.limits import MAX_FEATURE_DIM, MAX_ITEMS_PER_CALL, MAX_PREDICT_ROWS, MAX_TEXT_LENGTH
from sieve.origins import OriginError, origin
from sieve.storage import job_ids
from sieve.storage.link_store import Link, LinkStore
from sieve.use_cases import Pools, PoolSpec

log = logging.getLogger("sieve.labelstudio")


class LabelStudio:
    def __init__(self, pools: Pools, links: LinkStore):
        self.pools = pools
        self.links = links

    # -- setup and versions ---------------------------------------------------------------------------

    def setup(self, body: dict, tenant: str | None) -> dict:
        project, pid = self._project(body.get("project"))
        config = self._label_config(body.get("schema"), "schema", body.get("extra_params"))
        settings = self.pools.settings
        # With SIEVE_LABELSTUDIO_URL the workers call only it: the hostname is neither used nor kept.
        hostname = "" if settings.labelstudio_url else self._allowed_origin(body.get("hostname") or "")
        token = body.get("access_token")
        pool_id = self._connect(project, pid, config, tenant, hostname, token or "")
        if (hostname or settings.labelstudio_url) and (token or settings.labelstudio_token):
            # Tasks imported before Sieve was connected, and labels given while it was down, come in through
            # the REST API; this sync counts as the periodic one.
            self.links.sync_due([pool_id], settings.labelstudio_sync_seconds, force=True)
            enqueue_sync(self.pools.queue, pool_id, settings, why=job_ids.SYNC_SETUP)
        return {"model_version": self.model_version(pool_id)}

    def versions(self, tenant: str | None) -> dict:
        """Label Studio asks without naming a project: the current version of each of the tenant's projects."""
        return {"versions": sorted(self.model_version(pool_id) for pool_id in self.links.pools(tenant or ""))}

    def model_version(self, pool_id: str) -> str:
        return protocol.model_version(pool_id, self.pools.sizes(pool_id).ranked_version)

    def _allowed_origin(self, hostname: str) -> str:
        """The hostname as the origin workers will call, if the operator allows it; InvalidInput else."""
        if not hostname:
            return ""
        try:
            allowed = origin(hostname)
        except OriginError as error:
            raise InvalidInput(
                f"hostname {error}; Sieve calls only the origins listed in SIEVE_LABELSTUDIO_ORIGINS "
                "(or SIEVE_LABELSTUDIO_URL)",
                field="hostname",
            ) from None
        if allowed not in self.pools.settings.labelstudio_origins:
            log.warning("a Label Studio setup named %r, which SIEVE_LABELSTUDIO_ORIGINS does not list", allowed)
            raise InvalidInput(
                f"hostname {allowed} is not a Label Studio origin Sieve may call: add it to "
                "SIEVE_LABELSTUDIO_ORIGINS, or set SIEVE_LABELSTUDIO_URL",
                field="hostname",
            )
        return allowed

    def _label_config(self, xml, field: str, extra_params=None) -> LabelConfig:
        """The config's project; the ML backend's extra params may name the task field holding vectors
        (`vector_field`), which makes any Choices project, text ones too, a vector project."""
        if isinstance(extra_params, str) and extra_params.strip():
            # Label Studio's model form sends its "extra params" text box as a string.
            try:
                extra_params = json.loads(extra_params) if len(extra_params) <= MAX_CONFIG_CHARS else None
            except (ValueError, RecursionError):
                extra_params = None
            if not isinstance(extra_params, dict):
                raise InvalidInput(
                    'Sieve reads the extra params as a JSON object, such as {"vector_field": "embedding"}',
                    field="extra_params",
                )
        named = extra_params.get("vector_field") if isinstance(extra_params, dict) else None
        if named is not None and (
            not isinstance(named, str) or not 0 < len(named) <= MAX_FIELD_NAME or not named.isprintable()
        ):
            raise InvalidInput(
                f"vector_field must name a task data field: 1 to {MAX_FIELD_NAME} printable characters",
                field="extra_params.vector_field",
            )
        return parse_label_config(
            xml,
            field=field,
            vectors=named is not None,
            vector_field=named or self.pools.settings.labelstudio_vector_field,
        )

    @staticmethod
    def _project(value) -> tuple[str, int]:
        pid = protocol.project_id(value)
        if pid is None or not isinstance(value, str) or len(value) > 100:
            raise InvalidInput('project must be Label Studio\'s "<id>.<created time>"', field="project")
        return value, pid

    def _connect(
        self, project: str, pid: int, config: LabelConfig, tenant: str | None, hostname: str = "", token: str = ""
    ) -> str:
        """Finds the project's pool (of text, or of the tasks' vectors) and lets in the config's new classes,
        or creates the pool."""

        def link_to(pool_id: str, **more) -> Link:
            return Link(
                pool_id=pool_id,
                project=project,
                project_id=pid,
                from_name=config.from_name,
                to_name=config.to_name,
                field=config.field,
                vectors=config.vectors,
                **more,
            )

        link = self.links.find(tenant, project, pid)
        if link is not None:
            pool_id = link.pool_id
            if (self.pools.featurizer(pool_id) is None) != config.vectors:
                held, wanted = ("text", "vectors") if config.vectors else ("vectors", "text")
                raise Conflict(
                    f"this project's pool holds {held} and this setup asks for {wanted}; a pool keeps "
                    f"its kind: delete it (DELETE /v1/pools/{pool_id}) and connect again",
                    field="extra_params.vector_field" if config.vectors else "schema",
                )
            self.pools.widen_classes(pool_id, config.classes)
        else:
            # A new id each time: a deterministic one would meet the finished jobs of a deleted namesake.
            spec = PoolSpec(
                name=f"Label Studio project {pid}",
                classes=config.classes,
                featurizer=None if config.vectors else {},
            )
            made = self.pools.create(spec, tenant=tenant)
            self.links.save(link_to(made), tenant=None, index=False)
            pool_id = self.links.claim(tenant, project, pid, made)
            if pool_id != made:  # a concurrent setup of the same project won
                self.pools.delete(made)
        self.links.save(link_to(pool_id, hostname=hostname, token=token), tenant)
        return pool_id

    # -- predict --------------------------------------------------------------------------------------

    def predict(self, body: dict, tenant: str | None) -> dict:
        tasks = body.get("tasks")
        if not isinstance(tasks, list) or len(tasks) > MAX_PREDICT_ROWS:
            raise InvalidInput(f"tasks must be a list of at most {MAX_PREDICT_ROWS} tasks", field="tasks")
        project, pid = self._project(body.get("project"))
        link = self.links.find(tenant, project, pid)
        if link is None:
            # Sieve's Redis lost the project, or never saw its setup: the label config is here too.
            pool_id = self._connect(project, pid, self._label_config(body.get("label_config"), "label_config"), tenant)
            link = self.links.load(pool_id)
        pool_id = link.pool_id
        ids = [protocol.task_id(task) for task in tasks]
        self.absorb(link, tasks)
        known = set(i for i, k in zip(ids, self.pools.known_ids(pool_id, [i for i in ids if i])) if k)
        if link.vectors and tasks and not known and not self.pools.sizes(pool_id).n_items:
            # No task of the project has brought a vector yet: a setup to fix, rather than tasks to skip.
            raise self._no_vectors(link, tasks)
        labels, scores, version = self._judge(pool_id, [i for i in ids if i in known])
        results = []
        for item_id in ids:
            # A task Sieve cannot read comes last in the queue: confidence 1.
            label, score = (labels[item_id], scores[item_id]) if item_id in known else (None, 1.0)
            results.append(protocol.prediction(label, score, version, link.from_name, link.to_name))
        return {"results": results}

    @staticmethod
    def _no_vectors(link: Link, tasks: list) -> InvalidInput:
        """Why a vector project none of whose tasks has a readable vector cannot be served, and what to do."""
        at = next((n for n, task in enumerate(tasks) if protocol.carries(task, link.field)), None)
        if at is None:
            data = tasks[0].get("data") if isinstance(tasks[0], dict) else None
            fields = ", ".join(str(k)[:40] for k in list(data)[:5]) if isinstance(data, dict) and data else "nothing"
            problem = f"this project's tasks carry no vector in data.{link.field} (the first task's data has: {fields})"
        else:
            value = tasks[at]["data"][link.field]
            found = f"a list of {len(value)} values" if isinstance(value, list) else f"a {type(value).__name__}"
            problem = (
                f"no task here carries a vector Sieve can read in data.{link.field} (tasks[{at}] has "
                f"{found}): a vector is a list of 1 to {MAX_FEATURE_DIM} finite numbers within float32 range"
            )
        return InvalidInput(
            f"{problem}; import each task with data.{link.field} = [numbers] from your encoder, one length for all, "
            'or name the field holding them in the ML backend\'s extra params {"vector_field": ...} or '
            "SIEVE_LABELSTUDIO_VECTOR_FIELD",
            field=f"tasks[{at or 0}].data.{link.field}",
        )

    def _judge(self, pool_id: str, ids: list[str]) -> tuple[dict, dict, str]:
        """Each item's predicted label and Label Studio score, and the model version they come from."""
        status = self.pools.status(pool_id)
        version = protocol.model_version(pool_id, status["ranked_version"])
        if not ids:
            return {}, {}, version
        if status["cold_start"] or status["model_version"] is None:
            return {i: None for i in ids}, self._ranked_scores(pool_id, ids), version
        prediction = self.pools.predict(pool_id, ids=ids)
        strategy = status["strategy"]
        entry = REGISTRY.get(strategy)
        best = prediction.proba.argmax(axis=1)
        if entry is not None and entry.proba_score is not None:  # a score per item, from its probabilities
            confidence = dict(
                zip(
                    ids,
                    protocol.confidence(
                        strategy, entry.proba_score(prediction.proba), len(prediction.classes)
                    ).tolist(),
                )
            )
        else:
            confidence = self._ranked_scores(pool_id, ids)
        return {i: prediction.classes[b] for i, b in zip(ids, best)}, confidence, version

    def _ranked_scores(self, pool_id: str, ids: list[str]) -> dict:
        """From the order of the pool's published ranking (before a first model, its cold-start order), as
        the push job sends it: for strategies whose score of one item cannot be computed on its own."""
        ranking = self.pools.full_ranking(pool_id)
        confidence = protocol.confidence(ranking.strategy, ranking.scores, len(ranking.model_classes) or 2)
        confidence = dict(zip(ranking.ids, confidence.tolist()))
        return {i: confidence.get(i, 1.0) for i in ids}

    def absorb(self, link: Link, tasks: list) -> dict:
        """Adds the tasks Sieve has not seen, and teaches the annotations it has not seen (a task's latest)."""
        added = self._add_tasks(link, tasks)
        latest: dict[str, tuple[int, str]] = {}
        for task in tasks:
            item_id = protocol.task_id(task)
            annotations = task.get("annotations") if isinstance(task, dict) else None
            for annotation in annotations if item_id and isinstance(annotations, list) else []:
                label = protocol.annotation_choice(annotation, link.from_name)
                annotation_id = annotation.get("id") if isinstance(annotation, dict) else None
                if label is not None and type(annotation_id) is int and annotation_id > latest.get(item_id, (-1,))[0]:
                    latest[item_id] = (annotation_id, label)
        allowed = set(self.pools.status(link.pool_id)["classes"] or [])
        known = self.pools.known_ids(link.pool_id, list(latest))
        fresh = {
            item_id: entry
            for (item_id, entry), k in zip(latest.items(), known)
            if k and entry[1] in allowed and not self.links.knows(link.pool_id, entry[0])
        }
        if fresh:
            self.pools.teach(link.pool_id, list(fresh), [label for _, label in fresh.values()], source="labelstudio")
            for item_id, (annotation_id, label) in fresh.items():
                self.links.remember(link.pool_id, annotation_id, item_id, label)
        return {"added": added, "labeled": len(fresh)}

    def _add_tasks(self, link: Link, tasks: list) -> int:
        """Adds the tasks Sieve has not seen (those it can read) to the pool; how many it added."""
        added = 0
        for _ in range(3):  # another call may add some of the same tasks first: then try the rest again
            rows, dim = self._readable(link, tasks)
            new = [i for i, k in zip(rows, self.pools.known_ids(link.pool_id, list(rows))) if not k]
            new = new[:MAX_ITEMS_PER_CALL]
            if not new:
                return added
            batch = (
                ItemBatch(ids=new, features=np.stack([rows[i] for i in new]))
                if link.vectors
                else ItemBatch(ids=new, texts=[rows[i] for i in new])
            )
            try:
                self.pools.add_items(link.pool_id, batch)
                return added + len(new)
            except Conflict:
                continue
            except InvalidInput:
                if link.vectors and dim is None and self._dimension(link.pool_id) is not None:
                    continue  # another call gave the empty pool its dimension first: read the tasks again
                raise
        return added

    def _readable(self, link: Link, tasks: list) -> tuple[dict, int | None]:
        """Each readable task's text, or vector, by item id; and the pool's dimension before these tasks (a
        vector pool's first task sets it: a task of another dimension is unreadable)."""
        rows: dict = {}
        if not link.vectors:
            for task in tasks:
                item_id, body = protocol.task_id(task), protocol.task_text(task, link.field)
                if item_id is not None and body is not None:
                    rows[item_id] = body
            return rows, None
        dim = stored = self._dimension(link.pool_id)
        for task in tasks:
            item_id = protocol.task_id(task)
            row = protocol.task_vector(task, link.field, dim) if item_id is not None else None
            if row is not None:
                rows[item_id], dim = row, len(row)
        return rows, stored

    def _dimension(self, pool_id: str) -> int | None:
        return self.pools.sizes(pool_id).dim

    @staticmethod
    def _readable_what(link: Link) -> str:
        if link.vectors:
            return f"vector in data.{link.field} (finite numbers, of the pool's dimension)"
        return f"text (of at most {MAX_TEXT_LENGTH} characters)"

    # -- webhooks -------------------------------------------------------------------------------------

    def webhook(self, body, tenant: str | None) -> dict:
        """Handles one event; never raises for what Label Studio sent, and says what it did."""
        action = body.get("action") if isinstance(body, dict) else None
        handlers = {
            "ANNOTATION_CREATED": self._annotated,
            "ANNOTATION_UPDATED": self._annotated,
            "ANNOTATIONS_CREATED": self._annotations_created,
            "ANNOTATIONS_DELETED": self._annotations_deleted,
            "TASKS_CREATED": self._tasks_created,
            "TASKS_DELETED": self._tasks_deleted,
            "START_TRAINING": self._start_training,
        }
        # Only a string names an event (a list is unhashable, and the repr of a deep one recurses).
        handler = handlers.get(action) if isinstance(action, str) else None
        if handler is None:
            named = action[:50] if isinstance(action, str) else type(action).__name__
            return {"status": "ignored", "reason": f"Sieve does not act on {named!r}"}
        pid = protocol.project_id(body.get("project"))
        pool_id = self.links.pool_of(tenant, pid) if pid is not None else None
        link = self.links.load(pool_id) if pool_id else None
        if link is None or not self.pools.exists(link.pool_id):
            return {"status": "ignored", "reason": "this project is not connected to Sieve"}
        try:
            return {"status": "ok", "action": action, **handler(link, body)}
        except SieveError as error:
            return {"status": "ignored", "reason": error.message}

    def _annotated(self, link: Link, body: dict) -> dict:
        annotation = body.get("annotation") if isinstance(body.get("annotation"), dict) else {}
        item_id = protocol.task_id(annotation.get("task")) or protocol.task_id(body.get("task"))
        annotation_id = annotation.get("id")
        if item_id is None or isinstance(annotation_id, bool) or not isinstance(annotation_id, int):
            raise InvalidInput("the event names no annotation id and task id")
        label = protocol.annotation_choice(annotation, link.from_name)
        if label is None:
            # Cancelled (skipped) or without choices: this annotation no longer labels its task.
            return self._forget(link, [annotation_id])
        if not self.pools.known_ids(link.pool_id, [item_id])[0]:
            task = body.get("task") if isinstance(body.get("task"), dict) else {}
            if (
                not self._add_tasks(link, [{**task, "id": int(item_id)}])
                and not self.pools.known_ids(link.pool_id, [item_id])[0]
            ):
                raise NotFound(
                    f"task {item_id} is not in the pool and the event carries no {self._readable_what(link)} for it"
                )
        change = self.pools.teach(link.pool_id, [item_id], [label], source="labelstudio")
        self.links.remember(link.pool_id, annotation_id, item_id, label)
        return {"labeled": {item_id: label}, "labels_version": change.labels_version}

    def _annotations_created(self, link: Link, body: dict) -> dict:
        """Many annotations at once (Label Studio's "predictions to annotations"), with their tasks."""
        annotations = body.get("annotation") if isinstance(body.get("annotation"), list) else []
        tasks = {
            protocol.task_id(t): {**t, "annotations": []}
            for t in (body.get("task") if isinstance(body.get("task"), list) else [])
            if protocol.task_id(t)
        }
        for annotation in annotations:
            item_id = protocol.task_id(annotation.get("task")) if isinstance(annotation, dict) else None
            if item_id is not None:
                tasks.setdefault(item_id, {"id": int(item_id), "annotations": []})["annotations"].append(annotation)
        return self.absorb(link, list(tasks.values()))

    def _tasks_deleted(self, link: Link, body: dict) -> dict:
        """Deleted tasks lose their labels and get no more predictions; they stay in the pool, unlabeled."""
        tasks = body.get("tasks") if isinstance(body.get("tasks"), list) else []
        ids = list(dict.fromkeys(i for i in map(protocol.task_id, tasks) if i is not None))
        gone = [i for i, k in zip(ids, self.pools.known_ids(link.pool_id, ids)) if k]
        self.links.mark_deleted(link.pool_id, gone)
        removed = self.pools.unlabel(link.pool_id, gone, source="labelstudio")[0] if gone else 0
        return {"deleted": len(gone), "unlabeled": removed}

    def _annotations_deleted(self, link: Link, body: dict) -> dict:
        annotations = body.get("annotations") if isinstance(body.get("annotations"), list) else []
        ids = [a.get("id") for a in annotations if isinstance(a, dict)]
        return self._forget(link, [i for i in ids if isinstance(i, int) and not isinstance(i, bool)])

    def _forget(self, link: Link, annotation_ids: list[int]) -> dict:
        """Drops annotations; a task keeps the label of its latest remaining annotation, or loses its label."""
        outcome = self.links.forget(link.pool_id, annotation_ids)
        relabel = {task: label for task, label in outcome.items() if label is not None}
        unlabel = sorted(task for task, label in outcome.items() if label is None)
        if relabel:
            self.pools.teach(link.pool_id, list(relabel), list(relabel.values()), source="labelstudio")
        if unlabel:
            self.pools.unlabel(link.pool_id, unlabel, source="labelstudio")
        return {"labeled": relabel, "unlabeled": unlabel}

    def _tasks_created(self, link: Link, body: dict) -> dict:
        tasks = body.get("tasks") if isinstance(body.get("tasks"), list) else []
        return {"added": self._add_tasks(link, tasks[:MAX_ITEMS_PER_CALL])}

    def _start_training(self, link: Link, body: dict) -> dict:
        """The pool's labels become the project's, then a retrain if they changed, else the last ranking is
        pushed again: in a job with a fresh id, so that every press of the button runs one."""
        return {"job_id": enqueue_train(self.pools.queue, link.pool_id, self.pools.settings)}
