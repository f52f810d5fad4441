/**
 * Every `trellis` command, in the order `trellis --help` lists them. A new command is a file
 * in this folder exporting a `Command`, added here.
 */
import type { Command } from '../command.js';
import { apply } from './apply.js';
import { caInit } from './ca-init.js';
import { certIssue } from './cert-issue.js';
import { check } from './check.js';
import { controlPlane } from './control-plane.js';
import { deleteService } from './delete-service.js';
import { getInstances, getMesh, getService } from './get.js';
import { tokenCreate } from './token-create.js';
import { tokenRevoke } from './token-revoke.js';
import { stat } from './stat.js';
import { dashboard } from './dashboard.js';

export const commands: readonly Command[] = [controlPlane, apply, getService, getMesh, getInstances, deleteService, tokenCreate, tokenRevoke, check, stat, dashboard, caInit, certIssue];
