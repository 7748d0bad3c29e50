"""Readable generated flow run names, like "brisk-otter"."""

from __future__ import annotations

import random

_ADJECTIVES = (
    "amber brave brisk calm clever cosmic crisp daring eager fancy fearless gentle glossy "
    "golden hidden humble jolly keen lively lucky mellow merry mighty nimble noble patient "
    "polite proud quick quiet rapid rustic shiny silent silver smooth snappy spry steady "
    "sturdy sunny swift tidy tireless vivid warm witty zesty"
).split()
_NOUNS = (
    "badger beaver bison crane dingo dolphin eagle falcon ferret finch gecko heron ibex "
    "jackal koala lemur lynx marmot marten moose narwhal ocelot orca osprey otter owl panda "
    "pelican puffin quokka raven salmon seal sparrow stork tapir tiger toucan trout turtle "
    "viper walrus weasel wombat yak zebra"
).split()


def generate_run_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}"
