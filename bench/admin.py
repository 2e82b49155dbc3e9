# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""trytond-admin with the module imported from BENCH_MODULE_PATH

    BENCH_MODULE_PATH=var/bench/module-<commit> python -m bench.admin ...

It takes the arguments of trytond-admin and does what its script does."""
import os

from bench.run import use_module_path


def configure(parser_name):
    """Import the module from BENCH_MODULE_PATH, parse the arguments with the
    parser_name parser of trytond's command line, read the configuration and
    return the options"""
    if os.environ.get('BENCH_MODULE_PATH'):
        use_module_path(os.environ['BENCH_MODULE_PATH'])
    import trytond.commandline as commandline
    from trytond.config import config

    options = getattr(commandline, parser_name)().parse_args()
    config.update_etc(options.configfile)
    commandline.config_log(options)
    return options


def main():
    options = configure('get_parser_admin')
    # Import after the configuration is read
    import trytond.admin as admin
    admin.run(options)


if __name__ == '__main__':
    main()
