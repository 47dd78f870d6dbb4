"""The paper's experiments at CPU scale (``tools/experiments.py``): the training runs they share
(``runs``), the studies that evaluate them (``studies``) and the report they fill."""
