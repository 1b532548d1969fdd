"""One check that every rank is about to run the same call: ranks that disagree on the model or on the data's
shapes would otherwise exchange buffers of different sizes (MPI then fails with a truncation error, or worse,
adds unrelated numbers) or wait for each other in different collectives forever."""


def check_agree(coll, owner, fields, local=None):
    """Raise the same ValueError on every rank when ``fields`` (a dict of picklable values) is not the same
    on all of them; the message names each differing field and its value on every rank. Returns every
    rank's ``local`` value (gathered in the same message, not compared), in rank order."""
    gathered = coll.allgather((fields, local), f"{owner}'s consistency check")
    everyone = [g[0] for g in gathered]
    differing = [name for name in fields if any(other.get(name) != everyone[0].get(name) for other in everyone)]
    differing += [name for other in everyone for name in other if name not in fields and name not in differing]
    if not differing:
        return [g[1] for g in gathered]
    detail = "; ".join(f"{name}: " + ", ".join(f"rank {r}: {other.get(name)!r}" for r, other in enumerate(everyone))
                       for name in differing)
    raise ValueError(f"{owner} under DataParallel: the {len(everyone)} processes disagree on {detail}. Every rank "
                     "must build the same model, compile it the same way and call it with the same arguments "
                     "(with auto_shard_dataset=True, the same data set).")
