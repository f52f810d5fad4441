/**
 * Every `trellis` command, in the order `trellis --help` lists them. A new command is a file
 * in this folder exporting a `Command`, added here.
 */
import type { Command } from '../command.js';
import { caInit } from './ca-init.js';
import { certIssue } from './cert-issue.js';
import { tokenCreate } from './token-create.js';
import { stat } from './stat.js';
import { dashboard } from './dashboard.js';

export const commands: readonly Command[] = [caInit, certIssue, tokenCreate, stat, dashboard];
