"""testbed/peers"""
