"""The services of examples/shop/compose.yaml, written as a Pulumi program (Defang's `services`
shape): a public web front, a public API with two replicas, a private database reached by its
hostname, a migration job that gates the API, and a metrics port published on the host.

Build contexts are relative to this program's directory: the images are built from the
Dockerfiles of examples/shop.
"""

import pulumi

import pulumi_dockyard as dockyard

shop = dockyard.Project("shop", services={
    "web": {
        "build": {"context": "../../shop/web"},
        "ports": [{"target": 8080, "mode": "ingress"}],  # served at its own domain
        "environment": {"API_URL": "http://api:8000"},
        "depends_on": {"api": {"condition": "service_healthy"}},
        "health_check": {
            "test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"],
            "interval_seconds": 5,
            "timeout_seconds": 3,
            "retries": 5,
        },
        "stop_grace_period": "1s",
    },
    "api": {
        "build": {"context": "../../shop/api", "args": {"RELEASE": "2026.11"}},
        "ports": [{"target": 8000, "mode": "ingress"}],
        "environment": {"DATABASE_HOST": "db", "DATABASE_NAME": "shop"},
        "depends_on": {
            "db": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        },
        "health_check": {
            # Healthy only when the private database answers at its hostname.
            "test": ["CMD-SHELL", "nc -w 2 db 5432 </dev/null | grep -q ok && "
                     "wget -q -O- http://127.0.0.1:8000/health"],
            "interval_seconds": 5,
            "retries": 5,
        },
        # `limits` is Compose's spelling (Defang's schema has `reservations`): both are taken.
        "deploy": {"replicas": 2, "resources": {"limits": {"cpus": 0.5, "memory": "128M"}}},
        "stop_grace_period": "1s",
    },
    "db": {
        "build": {"context": "../../shop/db"},
        "volumes": [{"source": "data", "target": "/var/lib/db"}],  # kept across deployments
        "health_check": {
            "test": ["CMD-SHELL", "nc -w 2 127.0.0.1 5432 </dev/null | grep -q ok"],
            "interval_seconds": 2,
            "retries": 10,
        },
        "stop_grace_period": "1s",
    },
    "migrate": {
        "build": {"context": "../../shop/db"},
        "command": ["sh", "-c", "echo migrating; sleep 1; echo done"],
        "restart": "no",  # a one-off job
        "depends_on": {"db": {"condition": "service_healthy"}},
    },
    "metrics": {
        "build": {"context": "../../shop/web"},
        "command": ["httpd", "-f", "-p", "9100", "-h", "/www"],
        # Published on the host, no domain (`published` is Compose's spelling).
        "ports": [{"target": 9100, "published": 9100, "mode": "host"}],
        "stop_grace_period": "1s",
    },
})

pulumi.export("endpoints", shop.endpoints)
pulumi.export("services", shop.services)
pulumi.export("deployment", shop.deployment)
