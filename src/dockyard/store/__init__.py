"""The control plane's store: accounts, tokens, projects, deployments, events and build logs.

SQLite by default (a file under `$DOCKYARD_HOME`), any SQLAlchemy URL otherwise (PostgreSQL for
a shared server). Every query that reads or writes a user's data takes the account and filters
by it: no account can see another's rows.
"""

from dockyard.store.store import Account, DeploymentRecord, Store, StoreError

__all__ = ["Account", "DeploymentRecord", "Store", "StoreError"]
