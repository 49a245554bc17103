"""facetwin.envs: Gymnasium environments on the face twin (registered on ``import facetwin``)."""
