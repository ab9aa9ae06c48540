"""Plans: desired state + facts gathered from hosts -> steps. Pure: no I/O, no fabric/docker/subprocess."""
